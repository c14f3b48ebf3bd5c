//! Builds the runtime's wasm blob (`WASM_BINARY`) for the node to embed.

fn main() {
	#[cfg(feature = "std")]
	polkadot_sdk::substrate_wasm_builder::WasmBuilder::build_using_defaults();
}
