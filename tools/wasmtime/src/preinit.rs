//! `spin-preinit IN.wasm OUT.wasm`: pre-initializes an edgegate Spin component with wasmtime's
//! wizer. It instantiates the component, calls its `wizer-initialize` export (which compiles
//! the embedded routes file), and writes a component whose memory starts as that call left it.
//! Spin instantiates a component for every request; this way no request compiles routes.json.
//!
//! During initialization the component may use WASI (randomness for hash maps); HTTP is linked
//! only so the component instantiates, and every other import (key-value, variables) traps, so
//! nothing the gateway does per request can run at build time.
mod send;
#[path = "stub.rs"]
mod stub;

use anyhow::Context as _;
use wasmtime::component::{Component, Instance, Lift, Linker, ResourceTable, WasmList};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: send::PlainHttp,
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
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
        State {
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: send::PlainHttp,
        },
    );
    // The component's own export of the function lifts the core export, so the core export
    // stays (wasmtime-wizer 48 would remove it and leave the component invalid); calling it
    // again finds the gateway compiled and does nothing.
    let mut wizer = Wizer::new();
    wizer.keep_init_func(true);
    let snapshot = preinitialize(&wizer, &mut store, &wasm)
        .await
        .map_err(|e| anyhow::anyhow!("pre-initializing {input}: {e:?}"))?;
    std::fs::write(output, snapshot).with_context(|| format!("writing {output}"))?;
    Ok(())
}

/// The WASI packages linked for real (wasmtime-wasi and wasmtime-wasi-http).
const LINKED: &[&str] =
    &["wasi:cli/", "wasi:clocks/", "wasi:random/", "wasi:io/", "wasi:filesystem/", "wasi:sockets/", "wasi:http/"];

/// wasmtime-wizer's `run_component`, which its `wasmtime` feature would bring along with
/// wasmtime's GC, threads, compilation cache (zstd, a C build) and WAVE parser: this build
/// needs none of them, and the tools build on every cold CI run.
async fn preinitialize(wizer: &Wizer, store: &mut Store<State>, wasm: &[u8]) -> wasmtime::Result<Vec<u8>> {
    let (cx, instrumented) = wizer.instrument_component(wasm)?;
    let component = Component::new(store.engine(), &instrumented)?;
    let mut linker = Linker::new(store.engine());
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    // Spin's key-value store and variables: nothing a request does may run at build time.
    stub::trap_unprovided_imports(
        &mut linker,
        &component,
        |name| LINKED.iter().any(|package| name.starts_with(package)),
        |function| format!("`{function}` was called while pre-initializing"),
    )?;
    let instance = linker.instantiate_async(&mut *store, &component).await?;
    let init = instance
        .get_typed_func::<(), ()>(&mut *store, wizer.get_init_func())
        .map_err(|e| wasmtime::format_err!("the component has no `{}` export: {e}", wizer.get_init_func()))?;
    init.call_async(&mut *store, ()).await?;
    wizer.snapshot_component(&cx, &mut Snapshotting { store, instance }).await
}

/// What wizer reads the initialized instance's memories and globals through: the accessor
/// functions its instrumentation exported.
struct Snapshotting<'a> {
    store: &'a mut Store<State>,
    instance: Instance,
}

impl Snapshotting<'_> {
    async fn call<R: Lift + 'static, T>(
        &mut self,
        instance: &str,
        func: &str,
        read: impl FnOnce(&Store<State>, R) -> T,
    ) -> T {
        // wizer's trait has no error channel; its own implementation panics the same way.
        let exported =
            self.instance.get_export_index(&mut *self.store, None, instance).expect("wizer's accessor instance");
        let func_index =
            self.instance.get_export_index(&mut *self.store, Some(&exported), func).expect("wizer's accessor function");
        let typed = self.instance.get_typed_func::<(), (R,)>(&mut *self.store, func_index).expect("accessor type");
        let (value,) = typed.call_async(&mut *self.store, ()).await.expect("accessor call");
        read(self.store, value)
    }
}

impl ComponentInstanceState for Snapshotting<'_> {
    async fn call_func_ret_list_u8(&mut self, instance: &str, func: &str, contents: impl FnOnce(&[u8]) + Send) {
        self.call(instance, func, |store, list: WasmList<u8>| contents(list.as_le_slice(store))).await
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func, |_, value| value).await
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func, |_, value| value).await
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call(instance, func, |_, value: f32| value.to_bits()).await
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call(instance, func, |_, value: f64| value.to_bits()).await
    }
}
