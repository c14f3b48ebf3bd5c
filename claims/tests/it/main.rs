//! Every claim-store backend against the one conformance suite: the embedded store, a real
//! 3-member etcd cluster (etcd must be on PATH), the TiKV wire-protocol stand-in (NOT TiKV) and,
//! with `TIKV_PD_ADDRS`, a real TiKV cluster; plus prune, and etcd over mutual TLS with users.
//! One integration-test binary.

mod embedded;
mod etcd;
mod etcd_auth;
mod etcd_tls;
mod journal;
mod prune;
mod tikv;
