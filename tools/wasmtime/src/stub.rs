//! Imports a component has and a host does not serve, linked to functions that trap (shared by
//! the test host and the pre-initializer).
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceType};

/// Links every export of each imported instance that `provided` does not claim to a function
/// that traps with the message `trap` makes of `{name}#{export}`. Returns the names of the
/// stubbed instances.
///
/// (wasmtime's `define_unknown_imports_as_traps` would also shadow provided WASI imports
/// whose patch version differs from the linker's.)
pub fn trap_unprovided_imports<T: 'static>(
    linker: &mut Linker<T>,
    component: &Component,
    provided: impl Fn(&str) -> bool,
    trap: fn(&str) -> String,
) -> wasmtime::Result<Vec<String>> {
    let engine = linker.engine().clone();
    let mut stubbed = Vec::new();
    for (name, import) in component.component_type().imports(&engine) {
        let ComponentItem::ComponentInstance(instance) = import.ty else { continue };
        if provided(name) {
            continue;
        }
        let mut linked = linker.instance(name)?;
        for (export, item) in instance.exports(&engine) {
            match item.ty {
                ComponentItem::ComponentFunc(_) => {
                    let full = format!("{name}#{export}");
                    linked.func_new(export, move |_, _, _, _| Err(wasmtime::format_err!("{}", trap(&full))))?;
                }
                ComponentItem::Resource(_) => linked.resource(export, ResourceType::host::<()>(), |_, _| Ok(()))?,
                _ => {}
            }
        }
        stubbed.push(name.to_string());
    }
    Ok(stubbed)
}
