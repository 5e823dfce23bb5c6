//! THE pipeline, transport-neutral: identify -> route -> read request -> inspect -> decide ->
//! record -> approve -> relay -> answer.
//!
//! `http` and (later) `ssh` only translate their transport into calls on [`Gateway`]:
//! [`Gateway::open`] identifies the caller and routes the repository, then
//! [`Gateway::advertise`], [`Gateway::upload_pack`] and [`Gateway::receive_pack`] run one
//! operation each and return the answer as a stream. Errors become client answers in one
//! place, [`reject`].

mod advertise;
mod answer;
mod apply;
mod approve;
mod certificate;
mod fetch;
mod hold;
mod oplog;
mod push;
mod record;
mod refs;
pub mod reject;
pub mod route;
mod secrets;
mod tips;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::admin::metrics::Metrics;
use crate::config::Config;
use crate::git::{Protocol, Service};
use crate::identity::{AuthError, Authenticator, Identity};
use crate::policy::Policy;
use crate::secret::Secret;
use crate::upstream::{UpstreamError, UpstreamSetupError, Upstreams};

pub use approve::{decision_record_id, record_decision, Approver};
pub use reject::{RejectKind, Rejection};
pub use route::{Repo, RouteError};

/// The transport a session arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Smart HTTP.
    Http,
    /// SSH.
    Ssh,
}

impl Transport {
    /// `http` or `ssh`, as in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Ssh => "ssh",
        }
    }
}

/// What the caller presented.
pub enum Credential {
    /// Nothing.
    None,
    /// A bearer secret: a static token or an OIDC JWT.
    Token(Secret<String>),
    /// Already authenticated by the transport (SSH keys and certificates).
    Authenticated(Identity),
}

/// Everything the front door learnt about a request.
pub struct OpenRequest<'a> {
    /// The caller's credential.
    pub credential: Credential,
    /// `<upstream>/<path>[.git]`, still percent-encoded, without a leading `/`.
    pub repo_path: &'a str,
    /// The git service asked for.
    pub service: Service,
    /// The protocol version asked for.
    pub protocol: Protocol,
    /// The transport.
    pub transport: Transport,
    /// The client's address, when known.
    pub peer: Option<SocketAddr>,
    /// The session this request belongs to (an HTTP connection, an SSH connection); a new
    /// one when absent.
    pub session: Option<String>,
}

/// An identified caller working on one routed repository with one service.
#[derive(Debug, Clone)]
pub struct Session {
    /// Unique id of this session (for logs and, later, the record).
    pub id: String,
    /// Who is calling.
    pub identity: Identity,
    /// Which repository.
    pub repo: Repo,
    /// Which service.
    pub service: Service,
    /// Which protocol version the client asked for (receive-pack always speaks v0/v1).
    pub protocol: Protocol,
    /// Which transport.
    pub transport: Transport,
    /// The client's address.
    pub peer: Option<SocketAddr>,
    /// The refs this caller may neither see nor fetch in this repository.
    pub hidden: crate::policy::RefFilter,
}

/// Why a session step failed; [`reject`] turns it into the client's answer.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Identification failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Routing failed.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// The upstream failed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The client's request is malformed.
    #[error(transparent)]
    Proto(#[from] crate::proto::ProtoError),
    /// The request asks for something the gateway refuses to relay.
    #[error("{reason}")]
    Refused {
        /// Shown to the client.
        reason: String,
    },
    /// The request is larger than a configured limit.
    #[error("{what} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit in bytes.
        limit: u64,
    },
    /// The request body could not be read (client went away, bad gzip...).
    #[error("reading the request body: {0}")]
    Body(std::io::Error),
    /// The operation could not be recorded, so it is refused (fail closed).
    #[error("the audit record could not be written: {0}")]
    Unrecorded(String),
    /// The gateway itself failed (spool file, ...). Never shown to the client.
    #[error("internal: {0}")]
    Internal(String),
}

/// The gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// An upstream could not be set up.
    #[error(transparent)]
    Upstream(#[from] UpstreamSetupError),
    /// The secret scanner could not be built from `[scan]` (gitleaks_config rules).
    #[error("[scan]: {0}")]
    Scanner(#[from] crate::scan::BuildError),
    /// The audit store could not be opened.
    #[error("cannot open the audit record: {0}")]
    Audit(#[from] crate::audit::AuditError),
    /// The approvals store could not be opened.
    #[error("cannot open the approvals store: {0}")]
    Approvals(#[from] crate::approval::ApprovalError),
    /// An OIDC issuer's HTTP client could not be built.
    #[error(transparent)]
    Oidc(#[from] crate::identity::oidc::SetupError),
    /// The gateway's SSH user CA key could not be read or created.
    #[error("[ssh] ca_key: {0}")]
    SshCa(#[from] crate::identity::ssh_ca::KeyFileError),
    /// The state folder could not be created.
    #[error("cannot create state_dir {path}: {source}")]
    StateDir {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The shared state of the pipeline: configuration, identities, upstreams, metrics.
pub struct Gateway {
    config: Arc<Config>,
    auth: Authenticator,
    upstreams: Upstreams,
    metrics: Arc<Metrics>,
    policy: Policy,
    scanner: Option<Arc<crate::scan::Scanner>>,
    audit: crate::audit::Audit,
    approval: approve::ApprovalState,
    spool_dir: PathBuf,
    /// When each (session, repo) last asked for a receive-pack advertisement: the push that
    /// follows may use a mirror refreshed since then (see `Upstream::prefetch_history`).
    advertised: std::sync::Mutex<HashMap<(String, String), std::time::Instant>>,
    ssh_ca: Option<crate::identity::ssh_ca::SshCa>,
}

impl Gateway {
    /// Sets up the pipeline: creates `state_dir` (mode 0700: it will hold pushed packs) and its
    /// spool folder, builds the upstream clients.
    pub fn new(config: Arc<Config>, metrics: Arc<Metrics>) -> Result<Gateway, GatewayError> {
        let state_dir = config.server.state_dir.clone();
        let spool_dir = state_dir.join("spool");
        create_private_dir(&state_dir)?;
        create_private_dir(&spool_dir)?;
        let audit = crate::audit::Audit::open(
            &state_dir,
            &crate::audit::AuditOptions::from_config(&config.audit),
        )?;
        let approvals = crate::approval::Approvals::open(&state_dir)?;
        let auth = Authenticator::try_new(&config)?;
        auth.spawn_refresh();
        // The SSH user CA exists only with an SSH front: its certificates are good for nothing else.
        let ssh_ca = match config.server.ssh_listen {
            Some(_) => Some(crate::identity::ssh_ca::SshCa::load_or_create(
                &config.ssh.ca_key,
            )?),
            None => None,
        };
        Ok(Gateway {
            ssh_ca,
            approval: approve::ApprovalState::new(approvals, &config),
            audit,
            auth,
            policy: Policy::new(&config),
            scanner: secrets::build(&config)?,
            upstreams: Upstreams::new(&config)?,
            config,
            metrics,
            spool_dir,
            advertised: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The configuration the gateway runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The state folder.
    pub fn state_dir(&self) -> &std::path::Path {
        &self.config.server.state_dir
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Front door: identify the caller, route the repository, check the caller may use the
    /// service there. Nothing has reached the upstream yet.
    pub async fn open(&self, mut request: OpenRequest<'_>) -> Result<Session, Rejection> {
        let credential = std::mem::replace(&mut request.credential, Credential::None);
        let result = self.identify(credential).await.and_then(|identity| {
            let repo = route::route(&self.upstreams, request.repo_path)?;
            Ok((identity, repo))
        });
        let (identity, repo) = match result {
            Ok(v) => v,
            Err(e) => {
                // The client gets the generic rejection; the log and the record get the
                // precise reason (e.g. why a JWT was refused, named by its jti, never its value).
                let detail = match &e {
                    SessionError::Auth(auth) => {
                        self.metrics.auth_failures.inc();
                        auth.detail()
                    }
                    e => e.to_string(),
                };
                let rejection = Rejection::from(&e);
                self.record_front_door(&request, None, &rejection, Some(&detail))
                    .await;
                tracing::info!(
                    transport = request.transport.as_str(),
                    peer = ?request.peer,
                    service = %request.service,
                    result = rejection.kind.as_str(),
                    reason = %detail,
                    "refused at the front door"
                );
                return Err(rejection);
            }
        };
        let subject = crate::policy::Subject {
            name: &identity.name,
            groups: &identity.groups,
        };
        let hidden = self.policy.ref_filter(&subject, &repo.name);
        if request.service == Service::UploadPack {
            let verdict = self.policy.decide_fetch(&subject, &repo.name);
            if verdict.decision != crate::config::Decision::Allow {
                tracing::info!(
                    identity = %identity.name,
                    repo = %repo.name,
                    rule = verdict.rule.as_deref().unwrap_or("policy.default"),
                    "fetch denied"
                );
                let rejection = Rejection::new(RejectKind::Forbidden, verdict.reason);
                self.record_front_door(&request, Some((&identity, &repo.name)), &rejection, None)
                    .await;
                return Err(rejection);
            }
        }
        Ok(Session {
            id: request.session.unwrap_or_else(new_id),
            identity,
            repo,
            service: request.service,
            protocol: if request.service == Service::ReceivePack {
                // Push never uses protocol v2 (gitprotocol-v2: receive-pack falls back to v0).
                request.protocol.min(Protocol::V1)
            } else {
                request.protocol
            },
            transport: request.transport,
            peer: request.peer,
            hidden,
        })
    }

    /// Records an operation refused at the front door (no credentials, bad credentials, bad
    /// path, fetch denied). The refusal stands whether or not the record is written.
    async fn record_front_door(
        &self,
        request: &OpenRequest<'_>,
        who: Option<(&Identity, &str)>,
        rejection: &Rejection,
        detail: Option<&str>,
    ) {
        let now = std::time::SystemTime::now();
        let (identity, auth, repo) = match who {
            Some((identity, repo)) => (
                identity.name.clone(),
                identity.method.as_str().to_string(),
                repo.to_string(),
            ),
            None => (
                "-".to_string(),
                "none".to_string(),
                request.repo_path.chars().take(256).collect(),
            ),
        };
        let body = crate::audit::record::Operation {
            id: new_id(),
            session: request.session.clone().unwrap_or_else(new_id),
            time: crate::audit::record::format_time(now),
            duration_ms: 0,
            identity,
            auth,
            client: request.peer.map(|p| p.to_string()),
            transport: record::transport(request.transport),
            repo,
            service: record::service(request.service),
            protocol: request.protocol.number(),
            decision: crate::audit::record::Decision::Deny,
            reason: Some(detail.map_or_else(|| rejection.message.clone(), str::to_string)),
            refs: Vec::new(),
            fetch: None,
            push: None,
            pack: None,
        };
        self.record_refusal(body).await;
    }

    async fn identify(&self, credential: Credential) -> Result<Identity, SessionError> {
        match credential {
            Credential::None => Err(AuthError::Missing.into()),
            Credential::Token(token) => Ok(self.auth.authenticate(&token).await?.identity),
            Credential::Authenticated(identity) => Ok(identity),
        }
    }

    /// Verifies a bearer token (a static token or an OIDC JWT) outside a git operation, e.g. to
    /// exchange a JWT for an SSH certificate: the identity and, for a JWT, its expiry. A refusal
    /// carries the precise reason in [`AuthError::detail`] (for the log and record only).
    pub async fn verify_bearer(
        &self,
        token: &Secret<String>,
    ) -> Result<crate::identity::Verified, AuthError> {
        self.auth.authenticate(token).await
    }

    /// The authenticator (static tokens and OIDC issuers).
    pub fn authenticator(&self) -> &Authenticator {
        &self.auth
    }
}

fn create_private_dir(path: &std::path::Path) -> Result<(), GatewayError> {
    let err = |source| GatewayError::StateDir {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(path).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

impl Gateway {
    /// Notes that `session` was shown the receive-pack advertisement of its repository now.
    pub(crate) fn note_advertised(&self, session: &Session) -> std::time::Instant {
        let now = std::time::Instant::now();
        if let Ok(mut map) = self.advertised.lock() {
            // Entries are only useful for the push that follows within seconds.
            map.retain(|_, at| now.duration_since(*at) < ADVERTISED_TTL);
            map.insert((session.id.clone(), session.repo.name.clone()), now);
        }
        now
    }

    /// When `session` was last shown its repository's receive-pack advertisement, if recently.
    pub(crate) fn advertised_at(&self, session: &Session) -> Option<std::time::Instant> {
        let map = self.advertised.lock().ok()?;
        map.get(&(session.id.clone(), session.repo.name.clone()))
            .copied()
            .filter(|at| at.elapsed() < ADVERTISED_TTL)
    }
}

/// How long an advertisement's moment is kept for the push that follows it.
const ADVERTISED_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// A new random id: 16 lowercase hex digits (sessions, operations).
pub fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}
