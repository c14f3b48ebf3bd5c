//! Test hosts in network namespaces of the test's own (Linux, root, iproute2 and nftables).
//!
//! [`Net::new`] makes a hub namespace holding a bridge, and links the test process's own
//! (root) namespace to it with a veth pair carrying `10.<net>.0.1/16`, where `<net>` is the
//! first second octet in 200..=250 that no route but the default one matches in the root
//! namespace. [`Net::host`] adds a
//! namespace joined to the bridge by a veth whose far end (`eth0`) carries the host's addresses
//! in that /16. Every address is one the test made: traffic goes nowhere else.
//!
//! Faults are nftables rules in a host's own namespace (table `inet fault`): [`Host::fault`]
//! replaces them, [`Host::heal`] removes them. Packet loss is `numgen random`; this machine's
//! kernel has no `sch_netem` (nor `fq`, nor NFQUEUE), so fixed delays cannot be injected.
//!
//! Dropping the [`Net`] deletes every namespace it made (the veth pairs go with them, the root
//! end too). Namespaces left by a killed test process (`exn<pid>-…` of a pid that is gone) are
//! deleted by the next [`Net::new`].

use std::{
    net::Ipv4Addr,
    process::{Command, Stdio},
};

/// A set of namespaces joined by one bridge, and the root namespace's link to it.
pub struct Net {
    prefix: String,
    octet: u8,
    namespaces: Vec<String>,
}

/// One test host: a namespace with addresses on the shared bridge.
#[derive(Clone, Debug)]
pub struct Host {
    /// The namespace's name (for `ip netns exec`).
    pub ns: String,
    /// Its addresses, the first one primary (the source of what it sends).
    pub addrs: Vec<Ipv4Addr>,
}

fn run(args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e} (the partition tests need root, iproute2 and nftables)", args[0]))?;
    if let Some(text) = stdin {
        use std::io::Write;
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn must(args: &[&str]) {
    run(args, None).unwrap_or_else(|e| panic!("{e}"));
}

fn output(args: &[&str]) -> String {
    Command::new(args[0]).args(&args[1..]).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
}

/// Delete namespaces `exn<pid>-…` whose test process is gone (killed before its clean-up),
/// after killing what still runs in them (its etcd members and signers).
fn delete_stale() {
    for line in output(&["ip", "netns", "list"]).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(pid) = name.strip_prefix("exn").and_then(|r| r.split('-').next()) else { continue };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            for orphan in output(&["ip", "netns", "pids", name]).split_whitespace() {
                let _ = run(&["kill", "-9", orphan], None);
            }
            let _ = run(&["ip", "netns", "delete", name], None);
        }
    }
}

/// Whether `10.<octet>.0.0/16` is free: no route but the default one matches it.
fn free_net(octet: u8) -> bool {
    let matching = output(&["ip", "-4", "route", "show", "match", &format!("10.{octet}.0.0/16")]);
    matching.lines().all(|l| l.starts_with("default"))
}

impl Net {
    /// The hub and the root namespace's link. Panics naming what failed.
    pub fn new() -> Self {
        delete_stale();
        let octet = (200..=250u8).find(|o| free_net(*o)).expect("a free 10.x.0.0/16 (200 <= x <= 250) for the test hosts");
        let prefix = format!("exn{}", std::process::id());
        let mut net = Self { prefix, octet, namespaces: Vec::new() };
        let hub = net.add_namespace("hub");
        must(&["ip", "-n", &hub, "link", "add", "br0", "type", "bridge"]);
        must(&["ip", "-n", &hub, "link", "set", "br0", "up"]);
        let root_end = net.prefix.clone();
        must(&["ip", "link", "add", &root_end, "type", "veth", "peer", "name", "up0", "netns", &hub]);
        must(&["ip", "-n", &hub, "link", "set", "up0", "master", "br0", "up"]);
        must(&["ip", "addr", "add", &format!("{}/16", net.addr(0, 1)), "dev", &root_end]);
        must(&["ip", "link", "set", &root_end, "up"]);
        net
    }

    fn add_namespace(&mut self, name: &str) -> String {
        let ns = format!("{}-{name}", self.prefix);
        must(&["ip", "netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        must(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        ns
    }

    /// `10.<net>.<a>.<b>`.
    pub fn addr(&self, a: u8, b: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, self.octet, a, b)
    }

    /// A new host `name` with `addrs` (all in this net's /16; the first is primary).
    pub fn host(&mut self, name: &str, addrs: &[Ipv4Addr]) -> Host {
        let ns = self.add_namespace(name);
        let hub = format!("{}-hub", self.prefix);
        let port = format!("p{}", self.namespaces.len());
        must(&["ip", "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
        must(&["ip", "-n", &hub, "link", "set", &port, "master", "br0", "up"]);
        for a in addrs {
            must(&["ip", "-n", &ns, "addr", "add", &format!("{a}/16"), "dev", "eth0"]);
        }
        must(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        Host { ns, addrs: addrs.to_vec() }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // The hub last: with it go the bridge and the root namespace's end of the link.
        for ns in self.namespaces.iter().rev() {
            let _ = run(&["ip", "netns", "delete", ns], None);
        }
    }
}

/// What a host's `inet fault` table drops.
#[derive(Clone, Debug, Default)]
pub struct Fault {
    /// Packets to or from these addresses (both directions: a cut link).
    pub cut: Vec<Ipv4Addr>,
    /// Packets arriving for these of the host's own addresses.
    pub refuse_to: Vec<Ipv4Addr>,
    /// Every packet on `eth0`, both ways (the host isolated).
    pub isolate: bool,
    /// This share (percent) of the packets the host sends, at random (asymmetric loss).
    pub lose_sent_percent: u8,
}

impl Host {
    /// `ip netns exec <ns>`: a command prefix that runs a program in this host (same pid).
    pub fn exec_prefix(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.ns].map(String::from).to_vec()
    }

    /// Replace this host's faults with `fault`.
    pub fn fault(&self, fault: &Fault) {
        let mut input = Vec::new();
        let mut out = Vec::new();
        if fault.isolate {
            input.push("iifname \"eth0\" counter drop".to_string());
            out.push("oifname \"eth0\" counter drop".to_string());
        }
        for a in &fault.cut {
            input.push(format!("ip saddr {a} counter drop"));
            out.push(format!("ip daddr {a} counter drop"));
        }
        for a in &fault.refuse_to {
            input.push(format!("ip daddr {a} counter drop"));
        }
        if fault.lose_sent_percent > 0 {
            out.push(format!("oifname \"eth0\" numgen random mod 100 < {} counter drop", fault.lose_sent_percent));
        }
        let chain = |name: &str, hook: &str, rules: &[String]| {
            format!(
                "chain {name} {{ type filter hook {hook} priority 0; policy accept; {} }}",
                rules.iter().map(|r| format!("{r};")).collect::<String>()
            )
        };
        let script = format!(
            "table inet fault\ndelete table inet fault\ntable inet fault {{\n{}\n{}\n}}\n",
            chain("input", "input", &input),
            chain("output", "output", &out)
        );
        run(&["ip", "netns", "exec", &self.ns, "nft", "-f", "-"], Some(&script)).unwrap_or_else(|e| panic!("{e}\n{script}"));
    }

    /// Remove this host's faults.
    pub fn heal(&self) {
        self.fault(&Fault::default());
    }

    /// How many packets this host's fault rules have dropped since they were put on.
    pub fn dropped(&self) -> u64 {
        let table = output(&["ip", "netns", "exec", &self.ns, "nft", "list", "table", "inet", "fault"]);
        table.split("counter packets ").skip(1).filter_map(|rest| rest.split_whitespace().next().and_then(|n| n.parse::<u64>().ok())).sum()
    }
}
