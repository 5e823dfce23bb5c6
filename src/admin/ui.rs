//! The review pages of the admin listener: what a person opens from a held push's `review:`
//! link, with the same powers as the approvals API ([`super::api`]).
//!
//! - `GET /` and `GET /approvals[?status=pending]`: the approvals, newest first;
//! - `GET /approvals/{id}`: one approval with its commits, files, diff summary and (redacted)
//!   findings, and the approve and deny forms;
//! - `POST /approvals/{id}/approve` and `.../deny` (a form with `comment`): decides, then sends
//!   the browser back to the page.
//!
//! A browser signs in with HTTP basic authentication: the password is the token (the admin
//! token, or the token of an identity in `[approval] approver_groups`); with the admin token, the
//! user name is the approver's name. A decision must come from a page of this listener (its
//! `Origin`, or else its `Referer`, names the host it was sent to), so another site cannot make
//! a signed-in browser decide. Every value shown is HTML-escaped, and the pages allow no script
//! and no framing.

use std::fmt::Write as _;
use std::sync::Arc;

use base64::Engine as _;
use http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST, LOCATION, ORIGIN,
    REFERER, WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{json, Value};

use crate::approval::{ApprovalError, Status, Verdict};
use crate::http::{full, Body};
use crate::session::Gateway;

/// Largest form accepted.
const MAX_FORM: usize = 16 * 1024;

/// Whether `path` is one of the review pages.
pub fn is_page(path: &str) -> bool {
    path == "/" || path == "/approvals" || path.starts_with("/approvals/")
}

/// Answers one request for a review page.
pub async fn page(gateway: Arc<Gateway>, request: hyper::Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let method = request.method().as_str().to_string();
    let Some((token, user)) = credentials(request.headers()) else {
        return challenge();
    };
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", []) => redirect("/approvals"),
        ("GET", ["approvals"]) => {
            if gateway.authorize_approver(&token, None).is_none() {
                return challenge();
            }
            let status = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("status="))
                .and_then(Status::from_name);
            match gateway.approvals().run(move |s| s.list(status)).await {
                Ok(list) => html(StatusCode::OK, &list_page(&json!(list))),
                Err(e) => internal(&e),
            }
        }
        ("GET", ["approvals", id]) => {
            if gateway.authorize_approver(&token, None).is_none() {
                return challenge();
            }
            match super::api::with_details(&gateway, id).await {
                Ok((Some(a), details)) => {
                    html(StatusCode::OK, &approval_page(&json!(a), details.as_ref()))
                }
                Ok((None, _)) => message(StatusCode::NOT_FOUND, "No such approval."),
                Err(e) => internal(&e),
            }
        }
        ("POST", ["approvals", id, action]) => {
            let verdict = match *action {
                "approve" => Verdict::Approve,
                "deny" => Verdict::Deny,
                _ => return message(StatusCode::NOT_FOUND, "Not found."),
            };
            if !same_origin(request.headers()) {
                return message(
                    StatusCode::FORBIDDEN,
                    "Decisions are taken from the review page only (the request came from elsewhere).",
                );
            }
            let id = (*id).to_string();
            let Some(approver) = gateway.authorize_approver(&token, user.as_deref()) else {
                return challenge();
            };
            let comment = match read_form(request).await {
                Ok(form) => form
                    .into_iter()
                    .find(|(k, _)| k == "comment")
                    .map(|(_, v)| v)
                    .filter(|c| !c.trim().is_empty()),
                Err(r) => return r,
            };
            match gateway
                .decide_approval(&id, verdict, &approver.name, comment)
                .await
            {
                Ok(_) => redirect(&format!("/approvals/{id}")),
                Err(e) => decision_error(&e),
            }
        }
        _ => message(StatusCode::NOT_FOUND, "Not found."),
    }
}

/// The token (and, with basic authentication, the user name) the request presents.
fn credentials(headers: &HeaderMap) -> Option<(String, Option<String>)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Some((token.trim().to_string(), None));
    }
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, token) = text.split_once(':')?;
    let user = (!user.trim().is_empty()).then(|| user.trim().to_string());
    Some((token.to_string(), user))
}

/// Whether a form was posted from a page of this listener: its `Origin` (or, without one, its
/// `Referer`) has the host the request was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let from = headers
        .get(ORIGIN)
        .or_else(|| headers.get(REFERER))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| url::Url::parse(v).ok());
    let Some(from) = from else {
        return false;
    };
    let authority = match (from.host_str(), from.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => return false,
    };
    authority.eq_ignore_ascii_case(host)
}

async fn read_form(
    request: hyper::Request<Incoming>,
) -> Result<Vec<(String, String)>, Response<Body>> {
    let limited = http_body_util::Limited::new(request.into_body(), MAX_FORM);
    match limited.collect().await {
        Ok(c) => Ok(url::form_urlencoded::parse(&c.to_bytes())
            .into_owned()
            .collect()),
        Err(_) => Err(message(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The form is too large or unreadable.",
        )),
    }
}

fn list_page(list: &Value) -> String {
    let mut rows = String::new();
    let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
    for a in items.iter().rev() {
        let id = text(&a["id"]);
        let _ = write!(
            rows,
            "<tr><td><a href=\"/approvals/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&id),
            escape(&id),
            escape(&text(&a["status"])),
            escape(&text(&a["identity"])),
            escape(&text(&a["repo"])),
            escape(&text(&a["ref"])),
            escape(&text(&a["rule"])),
            escape(&text(&a["created"])),
        );
    }
    if items.is_empty() {
        rows.push_str("<tr><td colspan=\"7\">No approvals.</td></tr>");
    }
    layout(
        "Approvals",
        &format!(
            "<p><a href=\"/approvals?status=pending\">pending</a> · <a href=\"/approvals\">all</a></p>\
             <table><tr><th>id</th><th>status</th><th>pushed by</th><th>repository</th><th>ref</th><th>rule</th><th>asked</th></tr>{rows}</table>"
        ),
    )
}

fn approval_page(a: &Value, details: Option<&Value>) -> String {
    let id = text(&a["id"]);
    let mut body = String::new();
    body.push_str("<p><a href=\"/approvals\">all approvals</a></p><table>");
    for (label, key) in [
        ("status", "status"),
        ("pushed by", "identity"),
        ("repository", "repo"),
        ("ref", "ref"),
        ("old", "old"),
        ("new", "new"),
        ("rule", "rule"),
        ("reason", "reason"),
        ("asked", "created"),
        ("expires", "expires"),
        ("decided by", "by"),
        ("comment", "comment"),
        ("decided", "decided_at"),
        ("outcome", "outcome"),
    ] {
        if a[key].is_null() {
            continue;
        }
        let _ = write!(
            body,
            "<tr><th>{label}</th><td>{}</td></tr>",
            escape(&text(&a[key]))
        );
    }
    body.push_str("</table>");
    if let Some(d) = details {
        let commits = d["commits"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let _ = write!(body, "<h2>Commits ({})</h2><ul>", commits.len());
        for c in commits {
            let _ = write!(
                body,
                "<li><code>{}</code> {} — {}</li>",
                escape(&text(&c["id"]).chars().take(12).collect::<String>()),
                escape(&text(&c["subject"])),
                escape(&text(&c["author"])),
            );
        }
        body.push_str("</ul>");
        let files = d["files"].as_array().map(Vec::as_slice).unwrap_or_default();
        let _ = write!(body, "<h2>Files ({})</h2><ul>", files.len());
        for f in files {
            let _ = write!(body, "<li><code>{}</code></li>", escape(&text(f)));
        }
        body.push_str("</ul>");
        if d["diff"].is_object() {
            let _ = write!(
                body,
                "<p>{} insertions, {} deletions</p>",
                escape(&text(&d["diff"]["insertions"])),
                escape(&text(&d["diff"]["deletions"])),
            );
        }
        if let Some(findings) = d["findings"].as_array().filter(|f| !f.is_empty()) {
            let _ = write!(body, "<h2>Secret findings ({})</h2><ul>", findings.len());
            for f in findings {
                let _ = write!(
                    body,
                    "<li>{} in <code>{}</code> {}</li>",
                    escape(&text(&f["detector"])),
                    escape(&text(&f["path"])),
                    escape(&text(&f["preview"])),
                );
            }
            body.push_str("</ul>");
        }
    }
    if a["status"] == "pending" {
        let id = escape(&id);
        let _ = write!(
            body,
            "<h2>Decide</h2>\
             <form method=\"post\" action=\"/approvals/{id}/approve\"><input name=\"comment\" placeholder=\"comment\"> <button>Approve</button></form>\
             <form method=\"post\" action=\"/approvals/{id}/deny\"><input name=\"comment\" placeholder=\"comment\"> <button>Deny</button></form>"
        );
    }
    layout(&format!("Approval {id}"), &body)
}

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t} — gitgate</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}form{{margin:.5em 0}}</style>\
         </head><body><h1>{t}</h1>{body}</body></html>\n",
        t = escape(title),
    )
}

/// A JSON value as text: strings as they are, `null` as nothing.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Escapes `s` for HTML text and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html(status: StatusCode, page: &str) -> Response<Body> {
    let mut response = Response::new(full(page.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    response
}

fn message(status: StatusCode, text: &str) -> Response<Body> {
    html(
        status,
        &layout("gitgate", &format!("<p>{}</p>", escape(text))),
    )
}

fn challenge() -> Response<Body> {
    let mut r = message(
        StatusCode::UNAUTHORIZED,
        "Sign in with an approver's token as the password (with the admin token, the user name is the approver's name).",
    );
    r.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"gitgate-admin\""),
    );
    r
}

fn redirect(to: &str) -> Response<Body> {
    let mut r = Response::new(full(String::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

fn decision_error(e: &ApprovalError) -> Response<Body> {
    match super::api::decision_status(e) {
        Some(status) => message(status, &e.to_string()),
        None => internal(e),
    }
}

fn internal(e: &ApprovalError) -> Response<Body> {
    tracing::error!(error = %e, "admin pages: approvals store failed");
    message(StatusCode::INTERNAL_SERVER_ERROR, "Internal error.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_shown_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        let a = json!({"id": "ap-1", "status": "pending", "identity": "<b>me</b>", "ref": "refs/heads/main"});
        let d = json!({"commits": [{"id": "abc", "subject": "<img src=x onerror=alert(1)>", "author": "a"}],
                       "files": ["<x>.txt"], "diff": null});
        let page = approval_page(&a, Some(&d));
        assert!(
            !page.contains("<img") && !page.contains("<b>me") && !page.contains("<x>"),
            "{page}"
        );
        assert!(
            page.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{page}"
        );
        assert!(
            page.contains("action=\"/approvals/ap-1/approve\""),
            "{page}"
        );
        // A decided approval has no forms.
        let decided = json!({"id": "ap-1", "status": "approved", "by": "alice"});
        assert!(!approval_page(&decided, None).contains("<form"));
    }

    #[test]
    fn basic_and_bearer_credentials() {
        let mut h = HeaderMap::new();
        let basic = base64::engine::general_purpose::STANDARD.encode("alice:tok:en");
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {basic}")).expect("header"),
        );
        assert_eq!(
            credentials(&h),
            Some(("tok:en".into(), Some("alice".into())))
        );
        let basic = base64::engine::general_purpose::STANDARD.encode(":tok");
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {basic}")).expect("header"),
        );
        assert_eq!(credentials(&h), Some(("tok".into(), None)));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer t1"));
        assert_eq!(credentials(&h), Some(("t1".into(), None)));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(credentials(&h), None);
    }

    #[test]
    fn decisions_must_come_from_this_listener() {
        let headers = |pairs: &[(http::header::HeaderName, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(k.clone(), HeaderValue::from_static(v));
            }
            h
        };
        assert!(same_origin(&headers(&[
            (HOST, "127.0.0.1:8081"),
            (ORIGIN, "http://127.0.0.1:8081")
        ])));
        assert!(same_origin(&headers(&[
            (HOST, "gate.example"),
            (REFERER, "https://gate.example/approvals/ap-1")
        ])));
        assert!(!same_origin(&headers(&[
            (HOST, "127.0.0.1:8081"),
            (ORIGIN, "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            (HOST, "127.0.0.1:8081"),
            (ORIGIN, "null")
        ])));
        assert!(!same_origin(&headers(&[(HOST, "127.0.0.1:8081")])));
    }
}
