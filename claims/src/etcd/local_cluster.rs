//! Test support (features `etcd` + `conformance`): a real etcd cluster of local processes.
//!
//! [`LocalCluster::start`] runs `etcd` (from `PATH`) as `n` members on 127.0.0.1, on free
//! ports (found by binding port 0) and in a temporary directory, and waits until every member
//! reports healthy ([`LocalCluster::start_on`]: one member per test host, in network namespaces
//! the test made). Members can be killed with SIGKILL by pid and restarted on the same data
//! directory and ports. Dropping the cluster kills every member. This is a real etcd, not a
//! stand-in; it is for tests and benchmarks, never for production.

use std::{
    fmt::Write as _,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// How long a cluster (or a restarted member) may take to become healthy.
const HEALTHY_WITHIN: Duration = Duration::from_secs(30);

struct Member {
    name: String,
    /// The address it listens on (127.0.0.1, or a test host's).
    host: String,
    /// A command prefix it runs under (`ip netns exec <ns>`), or none.
    wrapper: Vec<String>,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    process: Option<Child>,
}

/// A running local etcd cluster.
pub struct LocalCluster {
    dir: tempfile::TempDir,
    members: Vec<Member>,
    initial_cluster: String,
    token: String,
}

fn free_ports(n: usize) -> Vec<u16> {
    // Hold every listener until all ports are chosen, so the n ports are distinct.
    let listeners: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind port 0")).collect();
    listeners.iter().map(|l| l.local_addr().expect("local addr").port()).collect()
}

fn etcd_missing() -> ! {
    panic!(
        "the etcd tests need a real `etcd` binary on PATH and none was found. Install it with \
         `apt-get install -y etcd-server` (the project's .ci/run does this)."
    )
}

impl LocalCluster {
    /// Start an `n`-member cluster and wait until every member is healthy. Panics (with the
    /// members' logs) if `etcd` is missing or the cluster does not come up: tests must fail,
    /// not skip, without etcd.
    pub fn start(n: usize) -> Self {
        let mut last_error = String::new();
        // A port found free may be taken before etcd binds it: start again on new ports.
        for _ in 0..3 {
            let ports = free_ports(2 * n);
            let cluster = Self::spawn((0..n).map(|i| ("127.0.0.1".to_string(), Vec::new(), ports[2 * i], ports[2 * i + 1])).collect());
            match cluster.wait_healthy(0..n) {
                Ok(()) => return cluster,
                Err(e) => last_error = e,
            }
        }
        panic!("etcd cluster did not become healthy:\n{last_error}");
    }

    /// A cluster of one member per `(address, command prefix)` (IPv4 addresses): each member
    /// listens on its address, ports 2379 (clients) and 2380 (peers), and runs under its prefix (`ip netns exec
    /// <ns>`: a test host of its own). Panics as [`Self::start`].
    pub fn start_on(hosts: &[(String, Vec<String>)]) -> Self {
        let cluster = Self::spawn(hosts.iter().map(|(addr, wrapper)| (addr.clone(), wrapper.clone(), 2379, 2380)).collect());
        if let Err(e) = cluster.wait_healthy(0..hosts.len()) {
            panic!("etcd cluster did not become healthy:\n{e}");
        }
        cluster
    }

    /// Members at `(address, command prefix, client port, peer port)`.
    fn spawn(at: Vec<(String, Vec<String>, u16, u16)>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = format!("exclave-test-{}-{}", std::process::id(), at.first().map_or(0, |m| m.2));
        let members: Vec<Member> = at
            .into_iter()
            .enumerate()
            .map(|(i, (host, wrapper, client_port, peer_port))| Member {
                name: format!("m{i}"),
                host,
                wrapper,
                client_port,
                peer_port,
                data_dir: dir.path().join(format!("m{i}.etcd")),
                log: dir.path().join(format!("m{i}.log")),
                process: None,
            })
            .collect();
        let initial_cluster = members.iter().map(|m| format!("{}=http://{}:{}", m.name, m.host, m.peer_port)).collect::<Vec<_>>().join(",");
        let n = members.len();
        let mut cluster = Self { dir, members, initial_cluster, token };
        for i in 0..n {
            cluster.spawn_member(i);
        }
        cluster
    }

    fn spawn_member(&mut self, i: usize) {
        let m = &self.members[i];
        let client = format!("http://{}:{}", m.host, m.client_port);
        let peer = format!("http://{}:{}", m.host, m.peer_port);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&m.log).expect("member log");
        let mut command = match m.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg("etcd");
                c
            }
            None => Command::new("etcd"),
        };
        command
            .args(["--name", &m.name, "--data-dir"])
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial_cluster, "--initial-cluster-token", &self.token])
            .args(["--initial-cluster-state", "new", "--logger", "zap", "--log-outputs", "stderr"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ETCD_") {
                command.env_remove(key);
            }
        }
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => etcd_missing(),
            Err(e) => panic!("cannot start etcd: {e}"),
        };
        self.members[i].process = Some(child);
    }

    /// Every member's client endpoint, `http://<address>:<port>`, in member order.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| format!("http://{}:{}", m.host, m.client_port)).collect()
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the cluster has no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The pid of member `i`, if it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].process.as_ref().map(Child::id)
    }

    /// Kill member `i` with SIGKILL (by its pid) and reap it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start member `i` again on its data directory and ports (killing it first if it runs).
    /// It becomes healthy once a quorum runs: see [`Self::wait_healthy`].
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn_member(i);
    }

    /// Wait until the members `which` report healthy (leader known, reads served).
    pub fn wait_healthy(&self, which: impl IntoIterator<Item = usize> + Clone) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if which.clone().into_iter().all(|i| self.healthy(i)) {
                return Ok(());
            }
            if start.elapsed() > HEALTHY_WITHIN {
                return Err(self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether member `i` answers `GET /health` with `"health":"true"`.
    pub fn healthy(&self, i: usize) -> bool {
        let m = &self.members[i];
        let Ok(addr) = format!("{}:{}", m.host, m.client_port).parse::<std::net::SocketAddr>() else { return false };
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else { return false };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        if stream.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
            return false;
        }
        let mut body = String::new();
        let _ = stream.read_to_string(&mut body);
        body.contains("\"health\":\"true\"")
    }

    /// The index of the current leader, asked of each running member through the maintenance
    /// status API; `None` if no running member names a leader it can map to a member.
    pub async fn leader(&self) -> Option<usize> {
        let mut ids = vec![None; self.members.len()];
        let mut leader = None;
        for (i, endpoint) in self.endpoints().iter().enumerate() {
            if self.members[i].process.is_none() {
                continue;
            }
            let options = etcd_client::ConnectOptions::new().with_timeout(Duration::from_secs(1));
            let Ok(mut client) = etcd_client::Client::connect([endpoint], Some(options)).await else { continue };
            let Ok(Ok(status)) = tokio::time::timeout(Duration::from_secs(2), client.status()).await else { continue };
            ids[i] = status.header().map(|h| h.member_id());
            if status.leader() != 0 {
                leader = Some(status.leader());
            }
        }
        ids.iter().position(|id| id.is_some() && *id == leader)
    }

    /// Password authentication as an operator sets it up: a `root` user, a role `exclave`
    /// granted read-write on the `exclave/` prefix only, each of `users` (name, password,
    /// whether it gets that role), then `auth enable`. Panics naming the step that failed.
    pub async fn enable_password_auth(&self, users: &[(&str, &str, bool)]) {
        use etcd_client::{Client, Permission};
        let must = |what: &str, r: Result<(), etcd_client::Error>| r.unwrap_or_else(|e| panic!("etcd auth set-up, {what}: {e}"));
        let mut client = Client::connect(self.endpoints(), None).await.unwrap_or_else(|e| panic!("etcd auth set-up, connect: {e}"));
        must("root user", client.user_add("root", "root-password", None).await.map(drop));
        must("root role", client.user_grant_role("root", "root").await.map(drop));
        must("exclave role", client.role_add("exclave").await.map(drop));
        let prefix = Permission::read_write("exclave/").with_prefix();
        must("grant exclave/", client.role_grant_permission("exclave", prefix).await.map(drop));
        for (name, password, granted) in users {
            must(name, client.user_add(*name, *password, None).await.map(drop));
            if *granted {
                must(name, client.user_grant_role(*name, "exclave").await.map(drop));
            }
        }
        must("auth enable", client.auth_enable().await.map(drop));
    }

    /// The tail of every member's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for m in &self.members {
            let text = std::fs::read_to_string(&m.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            let _ = writeln!(out, "--- {} ({}) ---", m.name, m.log.display());
            for line in tail.iter().rev() {
                let _ = writeln!(out, "{line}");
            }
        }
        out
    }

    /// The directory holding the members' data and logs.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
