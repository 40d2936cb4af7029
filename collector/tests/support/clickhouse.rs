//! A private ClickHouse server for a test: its own directory and port,
//! stopped when dropped. `cargo xtask test` installs Debian's
//! `clickhouse-server`; `TALLYMARK_CLICKHOUSE_SERVER` names another binary.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct ClickHouseServer {
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
    config: PathBuf,
    root: PathBuf,
    port: u16,
    pub url: String,
}

impl Drop for ClickHouseServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TALLYMARK_CLICKHOUSE_SERVER") {
        return PathBuf::from(p);
    }
    let debian = PathBuf::from("/usr/sbin/clickhouse-server");
    assert!(
        debian.exists(),
        "{} is missing: `cargo xtask test` installs it (apt clickhouse-server), \
         or set TALLYMARK_CLICKHOUSE_SERVER",
        debian.display()
    );
    debian
}

impl ClickHouseServer {
    /// A server whose data lives in a temporary directory.
    #[allow(dead_code)]
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        Self::start_at(root, Some(dir))
    }

    /// A server whose data lives in `root` (created if missing) and stays
    /// there after it stops, unless `dir` owns it.
    #[allow(dead_code)]
    pub fn start_in(root: PathBuf) -> Self {
        std::fs::create_dir_all(&root).expect("clickhouse directory");
        Self::start_at(root, None)
    }

    fn start_at(root: PathBuf, dir: Option<tempfile::TempDir>) -> Self {
        let http = free_port();
        let tcp = free_port();
        let users = root.join("users.xml");
        std::fs::write(
            &users,
            "<?xml version=\"1.0\"?><yandex><profiles><default></default></profiles>\
             <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>\
             <profile>default</profile><quota>default</quota></default>\
             <tallymark><password>s3cr:t</password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>\
             <profile>default</profile><quota>default</quota></tallymark></users>\
             <quotas><default></default></quotas></yandex>",
        )
        .expect("users.xml");
        let r = root.display().to_string();
        let config = root.join("config.xml");
        std::fs::write(
            &config,
            format!(
                "<?xml version=\"1.0\"?><yandex>\
                 <logger><level>warning</level><log>{r}/server.log</log><errorlog>{r}/err.log</errorlog></logger>\
                 <http_port>{http}</http_port><tcp_port>{tcp}</tcp_port><listen_host>127.0.0.1</listen_host>\
                 <path>{r}/data/</path><tmp_path>{r}/tmp/</tmp_path>\
                 <user_files_path>{r}/user_files/</user_files_path>\
                 <format_schema_path>{r}/format_schemas/</format_schema_path>\
                 <users_config>{}</users_config>\
                 <default_profile>default</default_profile><default_database>default</default_database>\
                 <mark_cache_size>5368709120</mark_cache_size>\
                 </yandex>",
                users.display()
            ),
        )
        .expect("config.xml");
        let mut server = ClickHouseServer {
            child: None,
            _dir: dir,
            config,
            root,
            port: http,
            url: format!("http://127.0.0.1:{http}"),
        };
        server.resume();
        server
    }

    /// Kills the server (its data stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data; returns once it
    /// answers.
    pub fn resume(&mut self) {
        self.stop();
        let child = Command::new(binary())
            .arg(format!("--config-file={}", self.config.display()))
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting clickhouse-server");
        self.child = Some(child);
        let (http, r) = (self.port, self.root.display().to_string());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", http)) {
                use std::io::{Read, Write};
                let _ = s.write_all(b"GET /ping HTTP/1.0\r\n\r\n");
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                if answer.ends_with("Ok.\n") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "clickhouse-server did not answer in 60 s (log: {r}/err.log)"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
