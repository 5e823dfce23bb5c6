//! Real upstreams on loopback: a folder of bare repositories (`file://`), `git http-backend`
//! behind nginx + fcgiwrap with basic auth, and OpenSSH's sshd forcing git-shell (`ssh://`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::net;
use super::process::Daemon;
use super::sshd::Sshd;
use super::tmp::Tmp;

/// Name of the environment variable that carries the upstream password to the gateway.
pub const PASSWORD_ENV: &str = "UPSTREAM_PW";

/// An upstream the gateway relays to.
pub enum Upstream {
    /// `file://<root>`.
    File {
        /// The folder holding the bare repositories.
        root: PathBuf,
    },
    /// `http://127.0.0.1:<port>/`, smart HTTP served by `git http-backend`.
    Http(Box<HttpBackend>),
    /// `ssh://<user>@127.0.0.1:<port>/<root>`, sshd running git-shell.
    Ssh(Box<Sshd>),
}

/// nginx + fcgiwrap + `git http-backend` serving `root` with basic auth.
pub struct HttpBackend {
    /// The folder holding the bare repositories (`GIT_PROJECT_ROOT`).
    pub root: PathBuf,
    /// nginx's port on 127.0.0.1.
    pub port: u16,
    /// The basic-auth user.
    pub user: String,
    /// The basic-auth password (the secret the gateway vaults).
    pub password: String,
    // Drop order: nginx first, then fcgiwrap, then the folder.
    nginx: Daemon,
    fcgiwrap: Daemon,
    tmp: Tmp,
}

impl Upstream {
    /// A `file://` upstream over the folder `root`.
    pub fn file(root: &Path) -> Upstream {
        Upstream::File {
            root: root.to_path_buf(),
        }
    }

    /// nginx + fcgiwrap running `git http-backend` over `root`, basic auth `user`:`password`.
    #[track_caller]
    pub fn http_backend(root: &Path, user: &str, password: &str) -> Upstream {
        Upstream::Http(Box::new(HttpBackend::start(root, user, password)))
    }

    /// sshd over `root`, the gateway's key forced to git-shell.
    #[track_caller]
    pub fn sshd(root: &Path) -> Upstream {
        Upstream::Ssh(Box::new(Sshd::start(root)))
    }

    /// The folder holding the bare repositories.
    pub fn root(&self) -> &Path {
        match self {
            Upstream::File { root } => root,
            Upstream::Http(h) => &h.root,
            Upstream::Ssh(s) => &s.root,
        }
    }

    /// The URL the gateway's config names (without credentials).
    pub fn url(&self) -> String {
        match self {
            Upstream::File { root } => format!("file://{}", root.display()),
            Upstream::Http(h) => format!("http://127.0.0.1:{}/", h.port),
            Upstream::Ssh(s) => {
                format!("ssh://{}@127.0.0.1:{}{}", s.user, s.port, s.root.display())
            }
        }
    }

    /// A URL for git to reach repository `path` directly, bypassing the gateway (credentials
    /// included for HTTP; the folder itself for SSH).
    pub fn direct_url(&self, path: &str) -> String {
        match self {
            Upstream::File { root } => format!("file://{}/{path}", root.display()),
            Upstream::Ssh(s) => format!("file://{}/{path}", s.root.display()),
            Upstream::Http(h) => {
                format!(
                    "http://{}:{}@127.0.0.1:{}/{path}",
                    h.user, h.password, h.port
                )
            }
        }
    }

    /// The `[[upstream]]` table naming this upstream `name` (credentials via [`PASSWORD_ENV`]).
    pub fn toml(&self, name: &str) -> String {
        match self {
            Upstream::File { .. } => {
                format!("[[upstream]]\nname = \"{name}\"\nurl = \"{}\"\n", self.url())
            }
            Upstream::Http(h) => format!(
                "[[upstream]]\nname = \"{name}\"\nurl = \"{}\"\nusername = \"{}\"\npassword_env = \"{PASSWORD_ENV}\"\n",
                self.url(),
                h.user
            ),
            Upstream::Ssh(s) => format!(
                "[[upstream]]\nname = \"{name}\"\nurl = \"{}\"\nssh_key_file = \"{}\"\nknown_hosts = \"{}\"\n",
                self.url(),
                s.client_key.display(),
                s.known_hosts.display()
            ),
        }
    }

    /// Environment the gateway needs for this upstream (the password variable).
    pub fn env(&self) -> Vec<(String, String)> {
        match self {
            Upstream::File { .. } | Upstream::Ssh(_) => Vec::new(),
            Upstream::Http(h) => vec![(PASSWORD_ENV.to_owned(), h.password.clone())],
        }
    }

    /// The secret the gateway must never reveal, if any.
    pub fn password(&self) -> Option<&str> {
        match self {
            Upstream::File { .. } | Upstream::Ssh(_) => None,
            Upstream::Http(h) => Some(&h.password),
        }
    }

    /// The HTTP backend, if this is one.
    pub fn http(&self) -> Option<&HttpBackend> {
        match self {
            Upstream::File { .. } | Upstream::Ssh(_) => None,
            Upstream::Http(h) => Some(h),
        }
    }

    /// The sshd, if this is one.
    pub fn ssh(&self) -> Option<&Sshd> {
        match self {
            Upstream::Ssh(s) => Some(s),
            _ => None,
        }
    }
}

impl HttpBackend {
    #[track_caller]
    fn start(root: &Path, user: &str, password: &str) -> HttpBackend {
        let tmp = Tmp::new("nginx");
        let dir = tmp.path().to_path_buf();
        let home = tmp.dir("home");
        std::fs::write(
            dir.join("htpasswd"),
            format!("{user}:{{PLAIN}}{password}\n"),
        )
        .expect("write htpasswd");
        let socket = dir.join("fcgi.sock");
        let mut fcgi_cmd = Command::new("fcgiwrap");
        fcgi_cmd
            .arg("-c")
            .arg("4")
            .arg("-s")
            .arg(format!("unix:{}", socket.display()))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("LC_ALL", "C");
        let mut fcgiwrap = Daemon::spawn("fcgiwrap", &mut fcgi_cmd, &dir);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            if let Some(status) = fcgiwrap.exited() {
                panic!("fcgiwrap exited with {status}: {}", fcgiwrap.output());
            }
            assert!(
                Instant::now() < deadline,
                "fcgiwrap did not create {}: {}",
                socket.display(),
                fcgiwrap.output()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let backend = http_backend_path();
        // A port taken between free_port() and nginx's bind is retried with another one.
        for _attempt in 0..5 {
            let port = net::free_port();
            let conf = nginx_conf(&dir, port, root, &socket, &backend);
            let conf_path = dir.join("nginx.conf");
            std::fs::write(&conf_path, conf).expect("write nginx.conf");
            let mut cmd = Command::new(nginx_path());
            cmd.arg("-p")
                .arg(&dir)
                .arg("-c")
                .arg(&conf_path)
                .arg("-e")
                .arg(dir.join("error.log"));
            let mut nginx = Daemon::spawn("nginx", &mut cmd, &dir);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(status) = nginx.exited() {
                    let log = format!(
                        "{}{}",
                        nginx.output(),
                        std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
                    );
                    if log.contains("in use") {
                        break;
                    }
                    panic!("nginx exited with {status}:\n{log}");
                }
                if net::wait_for_port(port, Duration::from_millis(50))
                    && net::listens(nginx.pid(), port)
                {
                    return HttpBackend {
                        root: root.to_path_buf(),
                        port,
                        user: user.to_owned(),
                        password: password.to_owned(),
                        nginx,
                        fcgiwrap,
                        tmp,
                    };
                }
                assert!(
                    Instant::now() < deadline,
                    "nginx did not listen on {port}: {}",
                    nginx.output()
                );
            }
        }
        panic!("nginx: no free port after 5 attempts");
    }

    /// nginx's access log: `user "authorization" "git-protocol" "request" status` per line.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.tmp.join("access.log")).unwrap_or_default()
    }

    /// Everything the daemons printed or logged (nginx error log, fcgiwrap and CGI stderr).
    pub fn logs(&self) -> String {
        format!(
            "--- nginx ---\n{}{}\n--- fcgiwrap ---\n{}",
            self.nginx.output(),
            std::fs::read_to_string(self.tmp.join("error.log")).unwrap_or_default(),
            self.fcgiwrap.output()
        )
    }

    /// Its private folder (config, logs, socket).
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }
}

/// `git http-backend` of the `git` on PATH (the same git the tests drive).
pub fn http_backend_path() -> PathBuf {
    let exec_path = super::git::ok(Path::new("/"), &["--exec-path"]);
    PathBuf::from(exec_path).join("git-http-backend")
}

fn nginx_path() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("nginx"))
}

/// nginx runs in the foreground as one process (no master, so killing it leaves no workers),
/// everything under its private prefix `dir`.
fn nginx_conf(dir: &Path, port: u16, root: &Path, socket: &Path, backend: &Path) -> String {
    let d = dir.display();
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
user root;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 512; }}
http {{
  log_format gitgate '$remote_user "$http_authorization" "$http_git_protocol" "$request" $status $body_bytes_sent';
  access_log {d}/access.log gitgate;
  client_body_temp_path {d}/body;
  fastcgi_temp_path {d}/fastcgi;
  proxy_temp_path {d}/proxy;
  scgi_temp_path {d}/scgi;
  uwsgi_temp_path {d}/uwsgi;
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 0;
    location / {{
      auth_basic "upstream";
      auth_basic_user_file {d}/htpasswd;
      fastcgi_pass unix:{socket};
      fastcgi_read_timeout 300s;
      fastcgi_send_timeout 300s;
      fastcgi_param SCRIPT_FILENAME {backend};
      fastcgi_param GIT_PROJECT_ROOT {root};
      fastcgi_param GIT_HTTP_EXPORT_ALL 1;
      fastcgi_param PATH_INFO $uri;
      fastcgi_param QUERY_STRING $query_string;
      fastcgi_param REQUEST_METHOD $request_method;
      fastcgi_param CONTENT_TYPE $content_type;
      fastcgi_param CONTENT_LENGTH $content_length;
      fastcgi_param SERVER_PROTOCOL $server_protocol;
      fastcgi_param GATEWAY_INTERFACE CGI/1.1;
      fastcgi_param REMOTE_USER $remote_user;
      fastcgi_param REMOTE_ADDR $remote_addr;
      fastcgi_param GIT_PROTOCOL $http_git_protocol if_not_empty;
    }}
  }}
}}
"#,
        socket = socket.display(),
        backend = backend.display(),
        root = root.display(),
    )
}
