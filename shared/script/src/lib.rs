//! The script sandbox of event hooks, user-defined functions (UDFs) and `sourceCode` agent
//! executors: [Rhai](https://rhai.rs), an embedded language without file, network or process
//! access of its own.
//!
//! Every run gets a fresh engine with hard limits ([`Limits`]): a number of operations, a
//! wall-clock deadline (checked while the script runs, and bounding each host call), the size of
//! strings, arrays and maps (so a script cannot allocate without bound), call and expression
//! depth. `import` does not exist (the crate is built without modules) and `eval` is disabled.
//!
//! The script sees its input as `input` and returns its last expression. The host API:
//! - `api_get(path)`, `api_post(path, body)`: Switchyard's own REST API (`path` starts with `/`),
//!   authenticated with the token the [`Host`] was given; the answer's JSON as a map;
//! - `ticket(id)`: `GET /api/mind/ticket/{id}`;
//! - `intents(ticket_id)`: the `intents` of `GET /api/mind/intent/byTicketId/{ticket_id}`;
//! - `udf(name, params)`: runs a user-defined function, its `result`;
//! - `log(value)` (and `print`/`debug`): lines kept with the outcome (at most [`MAX_LOG_LINES`]).
//!
//! A run blocks its thread (host calls wait for their answer): call [`Sandbox::run`] from
//! `tokio::task::spawn_blocking`, never on an async worker thread.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, ParseErrorType, Position, Scope};
use serde_json::Value;

/// Log lines a run keeps; further lines are dropped.
pub const MAX_LOG_LINES: usize = 100;
/// Characters of one kept log line.
const MAX_LOG_LINE: usize = 2000;

/// The limits of one run.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Rhai operations (roughly: expressions evaluated).
    pub max_operations: u64,
    /// Wall-clock time of the whole run, host calls included.
    pub timeout: Duration,
    /// Bytes of one string.
    pub max_string_size: usize,
    /// Elements of one array (nested arrays count).
    pub max_array_size: usize,
    /// Entries of one object map (nested maps count).
    pub max_map_size: usize,
    /// Depth of function calls.
    pub max_call_levels: usize,
    /// Depth of nested expressions (at top level and inside functions).
    pub max_expr_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 5_000_000,
            timeout: Duration::from_secs(5),
            max_string_size: 1 << 20,
            // Rhai re-measures a whole array or map when it grows, so growth costs O(n²):
            // these sizes keep that well under the deadline.
            max_array_size: 10_000,
            max_map_size: 2_000,
            max_call_levels: 32,
            max_expr_depth: 64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScriptError {
    #[error("script ran longer than {0:?}")]
    Timeout(Duration),
    #[error("script exceeded {0} operations")]
    TooManyOperations(u64),
    #[error("script exceeded a size limit: {0}")]
    Memory(String),
    #[error("script does not compile: {0}")]
    Compile(String),
    #[error("script failed: {0}")]
    Runtime(String),
}

/// What a successful run gives back.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The script's last expression (or `return` value) as JSON.
    pub result: Value,
    /// What the script logged.
    pub logs: Vec<String>,
}

/// Where the host API calls: Switchyard's REST API with a bearer token.
pub struct Host {
    base_url: String,
    token: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
    /// How deep in UDF calls this run is (UDFs calling UDFs end at [`MAX_UDF_DEPTH`]).
    depth: u32,
}

/// Nested `udf()` calls allowed (a UDF calling itself ends here, not in a loop).
pub const MAX_UDF_DEPTH: u32 = 3;
/// The header carrying the nesting depth of UDF calls.
pub const DEPTH_HEADER: &str = "x-switchyard-script-depth";

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Host")
            .field("base_url", &self.base_url)
            .field("depth", &self.depth)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// `base_url` like `http://127.0.0.1:8080`; `runtime` runs the HTTP calls while the script's
    /// thread waits.
    pub fn new(
        base_url: &str,
        token: &str,
        runtime: tokio::runtime::Handle,
    ) -> Result<Host, ScriptError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ScriptError::Runtime(format!("HTTP client: {e}")))?;
        Ok(Host {
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http,
            runtime,
            depth: 0,
        })
    }

    /// The same host for a run nested `depth` UDF calls deep.
    pub fn at_depth(&self, depth: u32) -> Host {
        Host {
            base_url: self.base_url.clone(),
            token: self.token.clone(),
            http: self.http.clone(),
            runtime: self.runtime.clone(),
            depth,
        }
    }

    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        deadline: Instant,
    ) -> Result<Value, String> {
        if !path.starts_with('/') {
            return Err(format!("path must start with /: {path}"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("no time left for an API call".into());
        }
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base_url))
            .bearer_auth(&self.token)
            .header(DEPTH_HEADER, self.depth.to_string())
            .timeout(left);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let fut = async move {
            let resp = req.send().await.map_err(|e| e.without_url().to_string())?;
            let status = resp.status();
            let text = resp.text().await.map_err(|e| e.without_url().to_string())?;
            let json: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            if status.is_success() {
                Ok(json)
            } else {
                let msg = json
                    .get("detail")
                    .or_else(|| json.get("message"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| json.to_string());
                Err(format!("{method} {path} answered {status}: {msg}"))
            }
        };
        self.runtime.block_on(fut)
    }
}

/// Runs scripts under [`Limits`], with an optional [`Host`] for the API functions.
#[derive(Debug, Clone, Default)]
pub struct Sandbox {
    limits: Limits,
    host: Option<Arc<Host>>,
}

fn runtime_error(msg: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(msg.into()),
        Position::NONE,
    ))
}

fn to_dynamic(v: &Value) -> Result<Dynamic, Box<EvalAltResult>> {
    rhai::serde::to_dynamic(v)
}

fn id_text(v: &Dynamic) -> String {
    if v.is_string() {
        v.clone().into_string().unwrap_or_default()
    } else {
        v.to_string()
    }
}

impl Sandbox {
    pub fn new(limits: Limits) -> Sandbox {
        Sandbox { limits, host: None }
    }

    pub fn with_host(mut self, host: Host) -> Sandbox {
        self.host = Some(Arc::new(host));
        self
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Compiles only: a syntax error is [`ScriptError::Compile`].
    pub fn check(&self, code: &str) -> Result<(), ScriptError> {
        let engine = self.engine(Instant::now() + self.limits.timeout, Default::default());
        engine.compile(code).map(|_| ()).map_err(compile_error)
    }

    /// Runs `code` with `input` bound to the variable `input`; its value as JSON.
    pub fn run(&self, code: &str, input: Value) -> Result<Value, ScriptError> {
        self.run_logged(code, input).map(|o| o.result)
    }

    /// As [`Sandbox::run`], with what the script logged.
    pub fn run_logged(&self, code: &str, input: Value) -> Result<Outcome, ScriptError> {
        let deadline = Instant::now() + self.limits.timeout;
        let logs: Rc<RefCell<Vec<String>>> = Default::default();
        let engine = self.engine(deadline, logs.clone());
        let ast = engine.compile(code).map_err(compile_error)?;
        let mut scope = Scope::new();
        let input = to_dynamic(&input).map_err(|e| ScriptError::Runtime(format!("input: {e}")))?;
        scope.push("input", input);
        let value = engine
            .eval_ast_with_scope::<Dynamic>(&mut scope, &ast)
            .map_err(|e| self.eval_error(&e))?;
        let result: Value = rhai::serde::from_dynamic(&value)
            .map_err(|e| ScriptError::Runtime(format!("result is not JSON: {e}")))?;
        let logs = logs.take();
        Ok(Outcome { result, logs })
    }

    fn eval_error(&self, e: &EvalAltResult) -> ScriptError {
        match e.unwrap_inner() {
            EvalAltResult::ErrorTerminated(..) => ScriptError::Timeout(self.limits.timeout),
            EvalAltResult::ErrorTooManyOperations(..) => {
                ScriptError::TooManyOperations(self.limits.max_operations)
            }
            EvalAltResult::ErrorDataTooLarge(what, _) => ScriptError::Memory(what.clone()),
            EvalAltResult::ErrorStackOverflow(_) => {
                ScriptError::Memory("too many nested function calls".into())
            }
            _ => ScriptError::Runtime(e.to_string()),
        }
    }

    fn engine(&self, deadline: Instant, logs: Rc<RefCell<Vec<String>>>) -> Engine {
        let l = &self.limits;
        let mut engine = Engine::new();
        engine
            .set_max_operations(l.max_operations)
            .set_max_string_size(l.max_string_size)
            .set_max_array_size(l.max_array_size)
            .set_max_map_size(l.max_map_size)
            .set_max_call_levels(l.max_call_levels)
            .set_max_expr_depths(l.max_expr_depth, l.max_expr_depth)
            .set_max_functions(256);
        engine.disable_symbol("eval");
        engine.on_progress(move |ops| {
            if ops % 256 == 0 && Instant::now() >= deadline {
                Some(Dynamic::from("timeout"))
            } else {
                None
            }
        });
        let keep = move |logs: &Rc<RefCell<Vec<String>>>, line: &str| {
            let mut l = logs.borrow_mut();
            if l.len() < MAX_LOG_LINES {
                l.push(line.chars().take(MAX_LOG_LINE).collect());
            }
        };
        {
            let logs = logs.clone();
            engine.on_print(move |s| keep(&logs, s));
        }
        {
            let logs = logs.clone();
            engine.on_debug(move |s, _, _| keep(&logs, s));
        }
        {
            let logs = logs.clone();
            engine.register_fn("log", move |v: Dynamic| keep(&logs, &id_text(&v)));
        }

        let host = self.host.clone();
        let call = move |method: reqwest::Method,
                         path: &str,
                         body: Option<Value>|
              -> Result<Dynamic, Box<EvalAltResult>> {
            let host = host
                .as_ref()
                .ok_or_else(|| runtime_error("the API is not available to this script"))?;
            let v = host
                .call(method, path, body, deadline)
                .map_err(runtime_error)?;
            to_dynamic(&v)
        };
        let call = Rc::new(call);
        {
            let call = call.clone();
            engine.register_fn("api_get", move |path: &str| {
                call(reqwest::Method::GET, path, None)
            });
        }
        {
            let call = call.clone();
            engine.register_fn("api_post", move |path: &str, body: Dynamic| {
                let body: Value = rhai::serde::from_dynamic(&body)?;
                call(reqwest::Method::POST, path, Some(body))
            });
        }
        {
            let call = call.clone();
            engine.register_fn("api_post", move |path: &str| {
                call(
                    reqwest::Method::POST,
                    path,
                    Some(Value::Object(Default::default())),
                )
            });
        }
        {
            let call = call.clone();
            engine.register_fn("ticket", move |id: Dynamic| {
                call(
                    reqwest::Method::GET,
                    &format!("/api/mind/ticket/{}", id_text(&id)),
                    None,
                )
            });
        }
        {
            let call = call.clone();
            engine.register_fn("intents", move |id: Dynamic| {
                let v = call(
                    reqwest::Method::GET,
                    &format!("/api/mind/intent/byTicketId/{}", id_text(&id)),
                    None,
                )?;
                let list = v
                    .try_cast::<rhai::Map>()
                    .and_then(|mut m| m.remove("intents"))
                    .unwrap_or_else(|| Dynamic::from_array(Vec::new()));
                Ok::<_, Box<EvalAltResult>>(list)
            });
        }
        {
            let call = call.clone();
            let depth = self.host.as_ref().map_or(0, |h| h.depth);
            engine.register_fn("udf", move |name: &str, params: Dynamic| {
                if depth >= MAX_UDF_DEPTH {
                    return Err(runtime_error(format!(
                        "udf({name}): more than {MAX_UDF_DEPTH} nested UDF calls"
                    )));
                }
                let body: Value = rhai::serde::from_dynamic(&params)?;
                let v = call(
                    reqwest::Method::POST,
                    &format!("/api/mind/executor/execute/{name}"),
                    Some(body),
                )?;
                Ok(v.try_cast::<rhai::Map>()
                    .and_then(|mut m| m.remove("result"))
                    .unwrap_or(Dynamic::UNIT))
            });
        }
        engine
    }
}

fn compile_error(e: rhai::ParseError) -> ScriptError {
    match e.err_type() {
        ParseErrorType::ExprTooDeep => ScriptError::Memory("expression nested too deeply".into()),
        _ => ScriptError::Compile(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sandbox() -> Sandbox {
        Sandbox::new(Limits {
            timeout: Duration::from_secs(2),
            ..Default::default()
        })
    }

    #[test]
    fn a_normal_script_returns_its_value() {
        let r = sandbox()
            .run_logged(
                r#"log("hi " + input.ticketId); let ready = input.intents.filter(|i| i.status == "ready");
                   #{ count: ready.len(), codes: ready.map(|i| i.code), ok: true }"#,
                json!({"ticketId": 7, "intents": [
                    {"code": "a", "status": "ready"}, {"code": "b", "status": "executed"}]}),
            )
            .expect("runs");
        assert_eq!(r.result, json!({"count": 1, "codes": ["a"], "ok": true}));
        assert_eq!(r.logs, vec!["hi 7".to_owned()]);
    }

    #[test]
    fn an_endless_loop_is_stopped() {
        let started = Instant::now();
        let err = sandbox().run("loop { }", json!({})).expect_err("stopped");
        assert!(
            matches!(
                err,
                ScriptError::Timeout(_) | ScriptError::TooManyOperations(_)
            ),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(4));
        // A slow loop under the operations limit runs into the deadline.
        let slow = Sandbox::new(Limits {
            timeout: Duration::from_millis(200),
            max_operations: u64::MAX,
            ..Default::default()
        });
        let started = Instant::now();
        let err = slow
            .run("let x = 0; loop { x += 1; }", json!({}))
            .expect_err("stopped");
        assert_eq!(err, ScriptError::Timeout(Duration::from_millis(200)));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn unbounded_allocation_is_stopped() {
        let err = sandbox()
            .run(r#"let a = []; loop { a.push("xxxxxxxxxx") }"#, json!({}))
            .expect_err("stopped");
        assert!(matches!(err, ScriptError::Memory(_)), "{err}");
        let err = sandbox()
            .run(r#"let s = "xx"; loop { s += s; }"#, json!({}))
            .expect_err("stopped");
        assert!(matches!(err, ScriptError::Memory(_)), "{err}");
        // Rhai does not measure a map on index assignment: the operations limit ends this one.
        let err = sandbox()
            .run(
                r#"let m = #{}; let i = 0; loop { m["k" + i] = i; i += 1; }"#,
                json!({}),
            )
            .expect_err("stopped");
        assert!(
            matches!(
                err,
                ScriptError::Memory(_)
                    | ScriptError::TooManyOperations(_)
                    | ScriptError::Timeout(_)
            ),
            "{err}"
        );
        let err = sandbox()
            .run("fn f(n) { f(n + 1) } f(0)", json!({}))
            .expect_err("stopped");
        assert!(matches!(err, ScriptError::Memory(_)), "{err}");
    }

    #[test]
    fn no_imports_no_eval_and_errors_say_why() {
        let err = sandbox()
            .run(r#"import "std" as s; 1"#, json!({}))
            .expect_err("no modules");
        assert!(matches!(err, ScriptError::Compile(_)), "{err}");
        let err = sandbox()
            .run(r#"eval("1 + 1")"#, json!({}))
            .expect_err("no eval");
        assert!(
            matches!(err, ScriptError::Compile(_) | ScriptError::Runtime(_)),
            "{err}"
        );
        let err = sandbox().run("let x = ;", json!({})).expect_err("syntax");
        assert!(matches!(err, ScriptError::Compile(_)), "{err}");
        let err = sandbox()
            .run(r#"throw "no contract""#, json!({}))
            .expect_err("thrown");
        assert!(err.to_string().contains("no contract"), "{err}");
        let err = sandbox()
            .run(r#"api_get("/api/mind/ticket/1")"#, json!({}))
            .expect_err("no host");
        assert!(err.to_string().contains("not available"), "{err}");
    }

    #[test]
    fn host_calls_reach_the_api_with_the_token() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).expect("read");
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let body =
                r#"{"success":true,"intents":[{"code":"a","status":"ready","aiAgentId":4}]}"#;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            req
        });
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let host =
            Host::new(&format!("http://{addr}"), "sy_secret", rt.handle().clone()).expect("host");
        let sb = sandbox().with_host(host);
        let v = sb
            .run(
                "intents(input.ticketId).map(|i| i.aiAgentId)",
                json!({"ticketId": 12}),
            )
            .expect("runs");
        assert_eq!(v, json!([4]));
        let req = server.join().expect("server");
        assert!(
            req.starts_with("GET /api/mind/intent/byTicketId/12 "),
            "{req}"
        );
        assert!(req
            .to_lowercase()
            .contains("authorization: bearer sy_secret"));
        let err = sb
            .run(r#"api_get("@evil.example/")"#, json!({}))
            .expect_err("relative paths only");
        assert!(err.to_string().contains("must start with /"), "{err}");
    }
}
