//! Embeds the routes file, and refuses to build when it is invalid.
fn main() {
    if let Err(errors) = edgegate_cli::embed_for_build() {
        edgegate_cli::fail_build(&errors);
    }
}
