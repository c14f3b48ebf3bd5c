//! The RPC transport under abuse: a flood of idle sockets from one address cannot starve other
//! clients (per-address cap, handshake deadline), a server certificate cannot act as a client,
//! batches are capped, WebSocket upgrades are not served, and requests beyond the in-flight bound
//! are answered `503 overloaded` at once. Every refusal is counted by reason.

use crate::common::*;
use exclave_tikv_protocol_standin::StandIn;
use std::{
    net::{IpAddr, TcpStream},
    time::{Duration, Instant},
};

const STATUS: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"exclave_status","params":[]}"#;

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

fn status_from(signer: &Signer, from: IpAddr) -> std::io::Result<String> {
    let tls = signer.tls();
    raw_request(signer, &post_request(STATUS), Some((tls.cert, tls.key)), Some(from))
}

fn answered(reply: &std::io::Result<String>) -> bool {
    reply.as_ref().is_ok_and(|r| r.contains("\"storeId\""))
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A signer holding //Alice's gran key on the TiKV wire-protocol stand-in (NOT TiKV), with a
/// claim deadline of `deadline_ms` and its config adjusted by `adjust`.
fn signer_on_standin(
    rt: &tokio::runtime::Runtime,
    deadline_ms: u64,
    adjust: impl FnOnce(TestConfig) -> TestConfig,
) -> (StandIn, tempfile::TempDir, Signer) {
    let standin = rt.block_on(StandIn::start()).expect("stand-in");
    let dir = tempfile::tempdir().expect("tempdir");
    exclave_signer::tls::DevPki::ensure(dir.path()).expect("pki");
    import_key(&dir.path().join("keystore"), "gran", "//Alice");
    let cfg = adjust(TestConfig::new(dir.path(), "signer-a").claims(standin_claims(&standin.pd_endpoint(), deadline_ms))).write();
    let signer = Signer::spawn(&["serve".into(), "--config".into(), cfg.display().to_string()], dir.path());
    (standin, dir, signer)
}

/// //Alice's round-`round` prevote for a block of `target` bytes, as a raw `exclave_sign` body.
fn raw_vote(target: u8, round: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"exclave_sign","params":[{{"chain":"0x{}","keyType":"gran","crypto":"ed25519","public":"0x{}","message":"0x{}"}}]}}"#,
        hex::encode(CHAIN),
        hex::encode(alice(exclave_policies::KeyType::GRANDPA)),
        hex::encode(grandpa_payload(false, target, 1, round, 1))
    )
}

#[test]
fn a_flood_of_idle_sockets_from_one_address_starves_no_other_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    exclave_signer::tls::DevPki::ensure(dir.path()).expect("pki");
    // The production default is 32 per address (`--dev` lifts it: loopback only); 8 keeps the
    // flood small.
    let cfg = TestConfig::new(dir.path(), "signer-a").max_connections_per_address(8).write();
    let signer = Signer::spawn(&["serve".into(), "--config".into(), cfg.display().to_string()], dir.path());
    let addr: std::net::SocketAddr = signer.rpc.trim_start_matches("https://").parse().expect("addr");
    // 16 sockets that never start TLS.
    let idle: Vec<TcpStream> = (0..16).map(|_| TcpStream::connect(addr).expect("connect")).collect();
    wait_for("8 connections over the per-address cap refused", Duration::from_secs(5), || signer.transport_refusals("address-limit") >= 8);
    assert!(answered(&status_from(&signer, loopback(2))), "a client from another address is served");
    assert!(!answered(&status_from(&signer, loopback(1))), "a 9th connection from the flooding address is not");
    // The idle ones are cut at the handshake deadline (5 s): the address is served again.
    wait_for("the idle sockets cut at the handshake deadline", Duration::from_secs(10), || {
        signer.transport_refusals("handshake-timeout") >= 8
    });
    assert!(answered(&status_from(&signer, loopback(1))), "served again once the idle sockets were cut");
    drop(idle);
}

#[test]
fn a_server_certificate_cannot_act_as_a_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = Signer::start(dir.path(), 0);
    let tls = dir.path().join("tls");
    let as_server = raw_request(&signer, &post_request(STATUS), Some((tls.join("server.pem"), tls.join("server.key"))), None);
    assert!(!answered(&as_server), "the server certificate was served as a client: {as_server:?}");
    // rustls' verifier already refuses a certificate whose usage excludes client authentication
    // (the handshake fails); one without any usage is refused after it (not-client-auth).
    // The client may see the failed handshake before the server has counted it.
    let refused = || signer.transport_refusals("handshake-failed") + signer.transport_refusals("client-cert-not-client-auth");
    wait_for("the refusal counted", Duration::from_secs(5), || refused() >= 1);
    assert_eq!(refused(), 1, "one refusal counted");
    assert!(answered(&status_from(&signer, loopback(1))), "the node certificate is served");
}

#[test]
fn batches_are_capped_and_websocket_is_not_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = Signer::start(dir.path(), 0);
    let tls = signer.tls();
    let cert = || Some((tls.cert.clone(), tls.key.clone()));
    let batch = |n: usize| {
        let calls: Vec<String> = (0..n).map(|i| format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"exclave_status","params":[]}}"#)).collect();
        raw_request(&signer, &post_request(format!("[{}]", calls.join(",")).as_bytes()), cert(), None).expect("post")
    };
    assert_eq!(batch(16).matches("\"storeId\"").count(), 16, "a batch of 16 is served");
    let refused = batch(17);
    assert_eq!(refused.matches("\"storeId\"").count(), 0, "a batch of 17 is refused whole: {refused}");
    assert!(refused.contains("error"), "{refused}");
    let upgrade = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let reply = raw_request(&signer, upgrade, cert(), None).unwrap_or_default();
    assert!(!reply.starts_with("HTTP/1.1 101"), "WebSocket upgrade accepted: {reply}");
}

#[test]
fn requests_beyond_the_in_flight_bound_are_answered_overloaded_at_once() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (standin, _dir, signer) = signer_on_standin(&rt, 3000, |cfg| cfg.max_concurrent_requests(1));
    let sign = raw_vote(0xaa, 1);
    // A sign request that waits on a frozen store holds the only place for up to 3 s.
    standin.faults().freeze_store(true);
    let slow = std::thread::scope(|s| {
        let slow = s.spawn(|| raw_post(&signer, sign.as_bytes(), true));
        wait_for("the sign request in flight", Duration::from_secs(5), || signer.rpc_calls("sign") == 1);
        let started = Instant::now();
        let reply = raw_post(&signer, STATUS, true).expect("post");
        assert!(reply.starts_with("HTTP/1.1 503") && reply.contains("overloaded"), "{reply}");
        assert!(started.elapsed() < Duration::from_secs(1), "the refusal waited {:?}", started.elapsed());
        slow.join().expect("slow request")
    });
    standin.faults().freeze_store(false);
    assert!(slow.expect("post").contains("\"code\":1004"), "the frozen store's request failed as store-unavailable");
    assert_eq!(signer.transport_refusals("overloaded"), 1);
    assert!(answered(&raw_post(&signer, STATUS, true)), "served again once the slow request ended");
}

/// A body dripped a byte at a time is cut at the request deadline with `408`, and the
/// connection closes; a dripping client no longer holds a connection for as long as it likes.
#[test]
fn a_body_dripped_byte_by_byte_is_cut_at_the_request_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().expect("tempdir");
    exclave_signer::tls::DevPki::ensure(dir.path()).expect("pki");
    let cfg = TestConfig::new(dir.path(), "signer-a").request_timeout_ms(5000).write();
    let signer = Signer::spawn(&["serve".into(), "--config".into(), cfg.display().to_string()], dir.path());
    let addr: std::net::SocketAddr = signer.rpc.trim_start_matches("https://").parse().expect("addr");
    let config = exclave_keystore_remote::tls_client_config(&signer.tls()).expect("client TLS");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (reply, took) = rt.block_on(async {
        let stream = tls_connect(addr, config, None).await.expect("connect");
        let (mut read, mut write) = tokio::io::split(stream);
        let started = Instant::now();
        let head = "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n";
        write.write_all(head.as_bytes()).await.expect("head");
        // A valid request, padded to the announced 100 bytes, one byte every 500 ms.
        let body = format!("{:<100}", String::from_utf8_lossy(STATUS));
        let drip = tokio::spawn(async move {
            for byte in body.into_bytes() {
                if write.write_all(&[byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(20), read.read_to_end(&mut out)).await;
        drip.abort();
        (String::from_utf8_lossy(&out).into_owned(), started.elapsed())
    });
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(took >= Duration::from_secs(5) && took < Duration::from_secs(9), "cut after {took:?}");
    assert_eq!(signer.transport_refusals("request-timeout"), 1);
}

/// A connection that serves no request for `listen.idle_timeout_ms` is closed: one kept alive
/// after its answer, and one whose headers are dripped a byte at a time and never complete (the
/// drip does not extend it). A request whose body takes longer than the idle timeout is served:
/// only the request deadline bounds a request being served.
#[test]
fn idle_connections_and_dripped_headers_are_closed_at_the_idle_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const IDLE: Duration = Duration::from_millis(1500);
    let dir = tempfile::tempdir().expect("tempdir");
    exclave_signer::tls::DevPki::ensure(dir.path()).expect("pki");
    let cfg = TestConfig::new(dir.path(), "signer-a").idle_timeout_ms(IDLE.as_millis() as u64).request_timeout_ms(10_000).write();
    let signer = Signer::spawn(&["serve".into(), "--config".into(), cfg.display().to_string()], dir.path());
    let addr: std::net::SocketAddr = signer.rpc.trim_start_matches("https://").parse().expect("addr");
    let config = exclave_keystore_remote::tls_client_config(&signer.tls()).expect("client TLS");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // Writes `head`, then `drip` one byte every 300 ms; reads until the server closes.
    let session = |head: Vec<u8>, drip: Vec<u8>| {
        let config = config.clone();
        rt.block_on(async move {
            let stream = tls_connect(addr, config, None).await.expect("connect");
            let (mut read, mut write) = tokio::io::split(stream);
            let started = Instant::now();
            write.write_all(&head).await.expect("head");
            let dripper = tokio::spawn(async move {
                for byte in drip {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    if write.write_all(&[byte]).await.is_err() {
                        return;
                    }
                }
                // Keep the write half open: the server, not the client, ends the connection.
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
            let mut out = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(20), read.read_to_end(&mut out)).await;
            dripper.abort();
            (String::from_utf8_lossy(&out).into_owned(), started.elapsed())
        })
    };
    let within = |took: Duration, from: Duration, to: Duration| took >= from && took < to;

    let keep_alive = String::from_utf8(post_request(STATUS)).expect("utf-8").replace("Connection: close\r\n", "");
    let (reply, took) = session(keep_alive.into_bytes(), Vec::new());
    assert!(reply.starts_with("HTTP/1.1 200") && reply.contains("storeId"), "{reply}");
    assert!(within(took, IDLE, IDLE * 3), "an idle kept-alive connection closed after {took:?}");

    let head = b"POST / HTTP/1.1\r\nHost: localhost\r\nX-Drip: ".to_vec();
    let (reply, took) = session(head, vec![b'a'; 40]);
    assert!(!reply.contains("200"), "{reply}");
    assert!(within(took, IDLE, IDLE * 3), "dripped headers held the connection {took:?}");
    assert_eq!(signer.transport_refusals("idle-timeout"), 2);

    // A body dripped over ~3 s (twice the idle timeout): the request is being served, so it is
    // answered, and the connection closes only after a further idle period.
    let (first, last) = STATUS.split_at(STATUS.len() - 10);
    let head = format!("POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", STATUS.len());
    let (reply, took) = session([head.as_bytes(), first].concat(), last.to_vec());
    assert!(reply.starts_with("HTTP/1.1 200") && reply.contains("storeId"), "a slow request was cut: {reply}");
    assert!(took > IDLE * 2, "answered before the body was complete? {took:?}");

    // A node's client (HTTP/2, kept alive) whose connection was closed while idle just connects
    // again: every call after an idle period is answered.
    let client = signer.client();
    for _ in 0..3 {
        let status = rt.block_on(exclave_protocol::ExclaveApiClient::status(&client));
        assert!(status.is_ok(), "a call after an idle close failed: {status:?}");
        std::thread::sleep(IDLE + Duration::from_millis(700));
    }
    assert!(signer.transport_refusals("idle-timeout") >= 5, "the client's idle connections were closed");
}

/// SIGTERM while a request waits on a frozen store: the request still gets its answer (store
/// unavailable, nothing signed), is logged, and only then comes the closing checkpoint; exit 0.
#[test]
fn sigterm_drains_the_request_in_flight_before_the_closing_checkpoint() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (standin, _dir, mut signer) = signer_on_standin(&rt, 2000, |cfg| cfg);
    let sign = raw_vote(0xbb, 3);
    standin.faults().freeze_store(true);
    let answer = std::thread::scope(|s| {
        let slow = s.spawn(|| raw_post(&signer, sign.as_bytes(), true));
        wait_for("the sign request in flight", Duration::from_secs(5), || signer.rpc_calls("sign") == 1);
        let pid = signer.child.id().to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
        slow.join().expect("slow request")
    });
    let status = signer.child.wait().expect("wait");
    assert!(status.success(), "SIGTERM ends in a clean exit: {status:?}");
    assert!(answer.expect("post").contains("\"code\":1004"), "the request in flight was answered: store unavailable");
    let log = signer.log();
    let last = log.last().expect("a line");
    assert_eq!(last["checkpoint"]["reason"], "stop", "the closing checkpoint comes last: {last}");
    let before = &log[log.len() - 2];
    assert_eq!((before["method"].as_str(), before["decision"].as_str()), (Some("sign"), Some("error")), "{before}");
}
