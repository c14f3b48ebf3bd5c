//! Generates the gRPC *server* side of TiKV's and PD's protocol from the `.proto` files that
//! ship inside the `tikv-client` crate's source. That directory is found through
//! `cargo metadata` (the crate's own generated code is client-only and private), so nothing is
//! copied into this repository. `protoc` comes from the `protoc-bin-vendored` crate unless
//! `PROTOC` names another one, so a machine with only Rust builds it.

use std::{
    env,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

/// The files whose services the stand-in serves; their imports come along.
const PROTOS: [&str; 3] = ["pdpb.proto", "keyspacepb.proto", "tikvpb.proto"];

fn main() {
    if env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path().expect("protoc-bin-vendored has no protoc for this platform; set PROTOC");
        // Build scripts are single-threaded: setting the variable for tonic-prost-build is sound.
        env::set_var("PROTOC", protoc);
    }
    let proto_dir = tikv_client_proto_dir();
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", proto_dir.display());
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let protos: Vec<PathBuf> = PROTOS.iter().map(|p| proto_dir.join(p)).collect();
    let includes = [proto_dir.clone(), proto_dir.join("include")];
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .generate_default_stubs(true)
        .out_dir(&out)
        .compile_protos(&protos, &includes)
        .unwrap_or_else(|e| panic!("compiling {} failed : {e}", proto_dir.display()));
    write_module_index(&out);
}

/// `<tikv-client 0.4 source>/proto`, from `cargo metadata`.
fn tikv_client_proto_dir() -> PathBuf {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(&env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(&manifest)
        .output()
        .expect("running cargo metadata");
    assert!(output.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("cargo metadata JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    let manifest_path = packages
        .iter()
        .find(|p| p["name"] == "tikv-client" && p["version"].as_str().is_some_and(|v| v.starts_with("0.4.")))
        .and_then(|p| p["manifest_path"].as_str())
        .expect("tikv-client 0.4 is not in the dependency graph");
    let dir = Path::new(manifest_path).parent().expect("manifest dir").join("proto");
    assert!(dir.join("tikvpb.proto").is_file(), "no tikvpb.proto in {}", dir.display());
    dir
}

/// One `pub mod <package>` per generated file, so the generated `super::metapb::…` paths resolve.
fn write_module_index(out: &Path) {
    let mut names: Vec<String> = fs::read_dir(out)
        .expect("OUT_DIR")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".rs").map(str::to_owned))
        .filter(|n| n != "protos" && !n.contains('.'))
        .collect();
    names.sort();
    let mut index = String::new();
    for name in names {
        let _ = writeln!(
            index,
            "#[allow(missing_docs, clippy::all, clippy::pedantic, unused_qualifications)]\npub mod {name} {{ include!(concat!(env!(\"OUT_DIR\"), \"/{name}.rs\")); }}"
        );
    }
    fs::write(out.join("protos.rs"), index).expect("writing protos.rs");
}
