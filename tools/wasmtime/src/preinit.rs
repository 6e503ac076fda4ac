//! `spin-preinit IN.wasm OUT.wasm`: pre-initializes an edgegate Spin component with wasmtime's
//! wizer. It instantiates the component, calls its `wizer-initialize` export (which compiles
//! the embedded routes file), and writes a component whose memory starts as that call left it.
//! Spin instantiates a component for every request; this way no request compiles routes.json.
//!
//! During initialization the component may use WASI (randomness for hash maps); HTTP is linked
//! only so the component instantiates, and every other import (key-value, variables) traps, so
//! nothing the gateway does per request can run at build time.
use anyhow::Context as _;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceTable, ResourceType};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};
use wasmtime_wizer::Wizer;

struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: wasmtime_wasi_http::default_hooks() }
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        anyhow::bail!("usage: spin-preinit IN.wasm OUT.wasm");
    };
    let wasm = std::fs::read(input).with_context(|| format!("reading {input}"))?;
    let engine = Engine::new(&Config::new())?;
    let mut store = Store::new(
        &engine,
        State { wasi: WasiCtx::builder().build(), http: WasiHttpCtx::new(), table: ResourceTable::new() },
    );
    // The component's own export of the function lifts the core export, so the core export
    // stays (wasmtime-wizer 48 would remove it and leave the component invalid); calling it
    // again finds the gateway compiled and does nothing.
    let (snapshot, _) = Wizer::new()
        .keep_init_func(true)
        .run_component(&mut store, &wasm, async |store: &mut Store<State>, component: &Component| {
            let mut linker = Linker::new(store.engine());
            wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
            wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
            trap_non_wasi_imports(&mut linker, component)?;
            linker.instantiate_async(store, component).await
        })
        .await
        .map_err(|e| anyhow::anyhow!("pre-initializing {input}: {e:?}"))?;
    std::fs::write(output, snapshot).with_context(|| format!("writing {output}"))?;
    Ok(())
}

/// The WASI packages linked for real (wasmtime-wasi and wasmtime-wasi-http).
const LINKED: &[&str] =
    &["wasi:cli/", "wasi:clocks/", "wasi:random/", "wasi:io/", "wasi:filesystem/", "wasi:sockets/", "wasi:http/"];

/// Links every other import (Spin's key-value store and variables) to a function that traps.
/// (wasmtime's `define_unknown_imports_as_traps` would also shadow the linked WASI imports
/// whose patch version differs from the linker's.)
fn trap_non_wasi_imports(linker: &mut Linker<State>, component: &Component) -> wasmtime::Result<()> {
    let engine = linker.engine().clone();
    for (name, import) in component.component_type().imports(&engine) {
        let ComponentItem::ComponentInstance(instance) = import.ty else { continue };
        if LINKED.iter().any(|package| name.starts_with(package)) {
            continue;
        }
        let mut linked = linker.instance(name)?;
        for (export, item) in instance.exports(&engine) {
            match item.ty {
                ComponentItem::ComponentFunc(_) => {
                    let full = format!("{name}#{export}");
                    linked.func_new(export, move |_, _, _, _| {
                        wasmtime::bail!("`{full}` was called while pre-initializing")
                    })?;
                }
                ComponentItem::Resource(_) => linked.resource(export, ResourceType::host::<()>(), |_, _| Ok(()))?,
                _ => {}
            }
        }
    }
    Ok(())
}
