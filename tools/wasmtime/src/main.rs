//! spin-test-host: a minimal local host for Fermyon Spin (spin-sdk 5.2,
//! WASIp2) HTTP components, used by edgegate's integration tests because the
//! `spin` CLI cannot be installed on the development machines.
//!
//! It serves HTTP/1.1 with hyper and calls the component's
//! `wasi:http/incoming-handler` export once per request (fresh `Store` and
//! instance per request, from an `InstancePre` prepared once), like
//! `wasmtime serve`. On top of the standard WASI interfaces it implements
//! `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft2` over one in-process map
//! shared by all requests, and `fermyon:spin/variables@2.0.0`.

mod kv;
mod send;
mod stub;
mod variables;

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, HOST};
use http_body_util::{BodyExt as _, Full};
use hyper::server::conn::http1;
use tokio::net::TcpListener;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Host-side bindings for the vendored WIT in `wit/`.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "host",
        imports: { default: trappable },
        with: {
            "wasi:keyvalue/store.bucket": crate::kv::BucketHandle,
            "wasi:keyvalue/atomics.cas": crate::kv::CasHandle,
        },
    });
}

const USAGE: &str = "\
usage: spin-test-host --listen ADDR:PORT --component APP.wasm [--var NAME=VALUE ...] [--kv KEY=VALUE ...]

  --listen ADDR:PORT    address to bind (port 0 = pick a free port); default 127.0.0.1:3000
  --component PATH      the Spin HTTP component (wasm32-wasip2 component)
  --var NAME=VALUE      value for fermyon:spin/variables `get(NAME)` (repeatable);
                        otherwise the env var SPIN_VARIABLE_<NAME uppercased> is used
  --kv KEY=VALUE        seed KEY in the `default` key-value store (repeatable)

After binding, exactly one line `listening on http://ADDR:PORT` is printed to stdout.";

struct Args {
    listen: SocketAddr,
    component: PathBuf,
    vars: HashMap<String, String>,
    seed: Vec<(String, String)>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut listen: SocketAddr = "127.0.0.1:3000".parse()?;
    let mut component = None;
    let mut vars = HashMap::new();
    let mut seed = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> anyhow::Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it.next().with_context(|| format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--listen" => {
                let v = value("--listen")?;
                listen = v.parse().with_context(|| format!("--listen: invalid socket address {v:?}"))?;
            }
            "--component" => component = Some(PathBuf::from(value("--component")?)),
            "--var" => {
                let v = value("--var")?;
                let (name, val) = v.split_once('=').with_context(|| format!("--var expects NAME=VALUE, got {v:?}"))?;
                variables::validate_name(name).map_err(|reason| anyhow::anyhow!("--var {name:?}: {reason}"))?;
                vars.insert(name.to_string(), val.to_string());
            }
            "--kv" => {
                let v = value("--kv")?;
                let (key, val) = v.split_once('=').with_context(|| format!("--kv expects KEY=VALUE, got {v:?}"))?;
                seed.push((key.to_string(), val.to_string()));
            }
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    let component = component.with_context(|| format!("--component is required\n\n{USAGE}"))?;
    Ok(Args { listen, component, vars, seed })
}

/// State shared by every request / instance.
pub struct Shared {
    pub kv: kv::KvMap,
    pub vars: HashMap<String, String>,
}

/// Per-request store data.
pub struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: send::PlainHttp,
    shared: Arc<Shared>,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

struct Server {
    pre: ProxyPre<State>,
    shared: Arc<Shared>,
    listen: SocketAddr,
    /// Guest instances still running (they may stream a body after the head was sent).
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

/// Counts a running guest instance for as long as it lives, however its task ends.
struct Running(Arc<std::sync::atomic::AtomicUsize>);

impl Running {
    fn start(count: &Arc<std::sync::atomic::AtomicUsize>) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Self(count.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("spin-test-host: error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("building tokio runtime")?;
    rt.block_on(serve(args))
}

fn build_pre(engine: &Engine, component: &Component) -> anyhow::Result<ProxyPre<State>> {
    let mut linker: Linker<State> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    bindings::wasi::keyvalue::store::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?;
    bindings::wasi::keyvalue::atomics::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?;
    bindings::wasi::keyvalue::batch::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?;
    bindings::fermyon::spin::variables::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?;

    // Spin hosts provide many interfaces this test host does not (sqlite, redis, mqtt, llm,
    // postgres, mysql, the `fermyon:spin` key-value, wasi:config, ...); spin-sdk components may
    // import some without using them, so they load and a call traps.
    let stubbed = stub::trap_unprovided_imports(&mut linker, component, host_provides, |function| {
        format!("spin-test-host does not implement `{function}`")
    })?;
    if !stubbed.is_empty() {
        eprintln!("spin-test-host: warning: not implemented here, calls will trap: {}", stubbed.join(", "));
    }
    let instance_pre = linker.instantiate_pre(component)?;
    ProxyPre::new(instance_pre)
        .map_err(anyhow::Error::from)
        .context("component does not export wasi:http/incoming-handler@0.2.x")
}

/// Whether this host implements the imported interface `name`
/// (`ns:pkg/iface@version`).
fn host_provides(name: &str) -> bool {
    let Some((path, version)) = name.split_once('@') else {
        return false;
    };
    match path {
        "wasi:keyvalue/store" | "wasi:keyvalue/atomics" | "wasi:keyvalue/batch" => version == "0.2.0-draft2",
        "fermyon:spin/variables" => version == "2.0.0",
        "wasi:http/types" | "wasi:http/outgoing-handler" => is_wasi_p2(version),
        _ => {
            let pkg = path.split('/').next().unwrap_or_default();
            matches!(pkg, "wasi:cli" | "wasi:io" | "wasi:clocks" | "wasi:random" | "wasi:filesystem" | "wasi:sockets")
                && is_wasi_p2(version)
        }
    }
}

/// A released WASIp2 version (`0.2.x`, not a pre-release such as
/// `0.2.0-rc-2023-11-10`).
fn is_wasi_p2(version: &str) -> bool {
    version.starts_with("0.2.") && !version.contains('-')
}

/// The engine as Spin configures it (spin-core's `Config::default`), so that what a request
/// costs here is what it costs under `spin up`: epoch interruption compiled into the guest's
/// code, and instances taken from Wasmtime's pooling allocator (pre-reserved slots, memory
/// reset by copy-on-write instead of mapped and unmapped per request) wherever the address
/// space allows it, with Spin's default pool sizes. Spin decides the same way, by probing.
fn engine_config(pooling: bool) -> Config {
    const MB: usize = 1 << 20;
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    if pooling {
        let instances = 1_000;
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        pool.total_component_instances(instances)
            .total_memories(instances)
            .total_tables(2 * instances)
            .total_stacks(instances)
            .total_core_instances(4 * instances)
            .table_elements(100_000)
            .max_component_instance_size(10 * MB)
            .max_core_instance_size(10 * MB)
            .max_core_instances_per_component(200)
            .max_tables_per_component(64)
            .max_memories_per_component(32)
            .max_tables_per_module(2)
            .max_memories_per_module(2)
            .max_memory_size(4 << 30)
            .linear_memory_keep_resident(2 * MB)
            .table_keep_resident(MB / 2);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    }
    // For profiling with `perf`: SPIN_HOST_PERFMAP=1 writes /tmp/perf-PID.map for the JIT code.
    if std::env::var_os("SPIN_HOST_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config
}

/// Whether 2^42 bytes of address space can be reserved, as the pool's memories need (Spin's
/// probe); `SPIN_WASMTIME_POOLING=0` or `=1` decides instead, as it does for Spin.
fn pooling_available() -> bool {
    match std::env::var("SPIN_WASMTIME_POOLING").as_deref() {
        Ok("1") => return true,
        Ok("0") => return false,
        _ => {}
    }
    const BITS: u32 = 42;
    let mut config = Config::new();
    config.wasm_memory64(true);
    config.memory_reservation(1 << BITS);
    let Ok(engine) = Engine::new(&config) else { return false };
    let mut store = Store::new(&engine, ());
    let memory = wasmtime::MemoryType::new64(0, Some(1 << (BITS - 16)));
    wasmtime::Memory::new(&mut store, memory).is_ok()
}

/// Advances the engine's epoch every 10 ms, as Spin's ticker thread does (it bounds guests
/// that have a deadline; every store here gets one that never arrives, as under Spin).
fn spawn_epoch_ticker(engine: &Engine) {
    let engine = engine.weak();
    std::thread::spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_millis(10));
        let Some(engine) = engine.upgrade() else { break };
        engine.increment_epoch();
    });
}

async fn serve(args: Args) -> anyhow::Result<()> {
    // The pool reserves its address space here; where the probe passed but the whole pool does
    // not fit (a smaller address-space limit), instances are made on demand instead.
    let engine = match Engine::new(&engine_config(pooling_available())) {
        Ok(engine) => engine,
        Err(error) => {
            eprintln!("spin-test-host: no pooling allocator ({error:#}); instantiating on demand");
            Engine::new(&engine_config(false))?
        }
    };
    spawn_epoch_ticker(&engine);
    let component = Component::from_file(&engine, &args.component)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("loading component {}", args.component.display()))?;
    let pre = build_pre(&engine, &component)?;

    let listener = TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let local = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{local}")?;
        out.flush()?;
    }

    let kv = kv::KvMap::default();
    for (key, value) in args.seed {
        kv.seed("default", key, value.into_bytes());
    }
    let server = Arc::new(Server {
        pre,
        shared: Arc::new(Shared { kv, vars: args.vars }),
        listen: local,
        in_flight: Arc::default(),
    });

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        eprintln!("spin-test-host: accept failed: {e}");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let server = server.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let server = server.clone();
                        async move { Ok::<_, Infallible>(server.handle(req, peer).await) }
                    });
                    if let Err(e) = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                    {
                        if !e.is_incomplete_message() {
                            eprintln!("spin-test-host: error serving {peer}: {e}");
                        }
                    }
                });
            }
        }
    }
    // Stopped: the guests still running (a request the client gave up on, a body still
    // streaming) get a moment to end. Dropping the runtime under them would cancel their
    // outbound requests, which wasmtime-wasi-http answers with a panic.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while server.in_flight.load(std::sync::atomic::Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let _ = std::io::stdout().flush();
    Ok(())
}

fn text_response(status: u16, msg: String) -> hyper::Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from(msg)).map_err(|never| match never {}).boxed_unsync();
    let mut resp = hyper::Response::new(body);
    *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

fn insert_header(headers: &mut http::HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

impl Server {
    async fn handle(
        self: Arc<Self>,
        req: hyper::Request<hyper::body::Incoming>,
        peer: SocketAddr,
    ) -> hyper::Response<HyperOutgoingBody> {
        match self.handle_inner(req, peer).await {
            Ok(resp) => resp,
            Err(e) => {
                eprintln!("spin-test-host: request failed: {e:#}");
                text_response(500, format!("spin-test-host: {e:#}\n"))
            }
        }
    }

    async fn handle_inner(
        &self,
        mut req: hyper::Request<hyper::body::Incoming>,
        peer: SocketAddr,
    ) -> anyhow::Result<hyper::Response<HyperOutgoingBody>> {
        // Spin-style request headers (the app is mounted at a catch-all
        // route `/...`, base `/`).
        let host = match req.uri().authority() {
            Some(a) => a.to_string(),
            None => match req.headers().get(HOST).and_then(|h| h.to_str().ok()) {
                Some(h) => h.to_string(),
                None => self.listen.to_string(),
            },
        };
        let path_and_query =
            req.uri().path_and_query().map(|pq| pq.as_str().to_string()).unwrap_or_else(|| "/".to_string());
        let path = req.uri().path().to_string();
        let headers = req.headers_mut();
        if !headers.contains_key(HOST) {
            insert_header(headers, "host", &host);
        }
        insert_header(headers, "spin-full-url", &format!("http://{host}{path_and_query}"));
        insert_header(headers, "spin-client-addr", &peer.to_string());
        insert_header(headers, "spin-path-info", &path);
        insert_header(headers, "spin-matched-route", "/...");
        insert_header(headers, "spin-raw-component-route", "/...");
        insert_header(headers, "spin-component-route", "");
        insert_header(headers, "spin-base-path", "/");

        let mut store = Store::new(
            self.pre.engine(),
            State {
                wasi: WasiCtx::builder().inherit_stdio().build(),
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
                hooks: send::PlainHttp,
                shared: self.shared.clone(),
            },
        );
        // With epoch interruption on, a store without a deadline traps at once; Spin gives each
        // one a deadline that never arrives (2^63 ticks).
        store.set_epoch_deadline(u64::MAX / 2);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store.data_mut().http().new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let pre = self.pre.clone();

        // Run the guest in its own task: it may keep streaming the response
        // body after `response-outparam::set` has handed us the head.
        let running = Running::start(&self.in_flight);
        let task = tokio::spawn(async move {
            let _running = running;
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await?;
            Ok::<_, wasmtime::Error>(())
        });

        match receiver.await {
            Ok(Ok(resp)) => {
                // Log (but otherwise ignore) failures after the head was sent.
                tokio::spawn(async move {
                    match task.await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            eprintln!("spin-test-host: guest error after response: {:#}", anyhow::Error::from(e))
                        }
                        Err(e) => eprintln!("spin-test-host: guest task failed: {e}"),
                    }
                });
                Ok(resp)
            }
            Ok(Err(code)) => bail!("guest set an error response: {code:?}"),
            Err(_) => {
                let e: anyhow::Error = match task.await {
                    Ok(Ok(())) => anyhow::anyhow!("guest never invoked `response-outparam::set`"),
                    Ok(Err(e)) => anyhow::Error::from(e).context("guest trapped"),
                    Err(e) => anyhow::Error::from(e).context("guest task failed"),
                };
                Err(e)
            }
        }
    }
}
