//! The routes: the page, `/api/restore`, `/api/parse`, `/api/info` and `/healthz`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use instruct_ipt::{Decision, Intent, Task, application_order, decode_image_within, describe_request};
use serde::{Deserialize, Serialize};

use crate::queue::Queue;
use crate::request::{self, Ask, RestoreForm};
use crate::{ApiError, Limits, Models, page, png};

/// Header of a restored image: the decision in words.
pub const DECISION_HEADER: &str = "x-instruct-ipt-decision";
/// Header of a restored image: the tasks applied, comma-separated, in order.
pub const TASKS_HEADER: &str = "x-instruct-ipt-tasks";
/// Header of a restored image: why the request does not seem to fit the photo, if it does not.
pub const WARNING_HEADER: &str = "x-instruct-ipt-warning";

/// Largest body of `POST /api/parse`: an instruction of [`request::MAX_INSTRUCTION_CHARS`]
/// characters in JSON needs a few KiB, and a body is read whole before it is parsed.
const MAX_PARSE_BODY_BYTES: usize = 64 << 10;

/// What every handler shares.
#[derive(Clone)]
struct AppState {
    models: Arc<Models>,
    limits: Limits,
    queue: Queue,
}

/// The server's routes over `models`, within `limits`.
pub fn app(models: Arc<Models>, limits: Limits) -> Router {
    let state = AppState { models, queue: Queue::new(&limits), limits: limits.clone() };
    Router::new()
        .route("/", get(page::index))
        .route("/api/restore", post(restore))
        .route("/api/parse", post(parse).layer(DefaultBodyLimit::max(MAX_PARSE_BODY_BYTES)))
        .route("/api/info", get(info))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such page or API route") })
        .layer(DefaultBodyLimit::max(limits.max_upload_bytes))
        .with_state(state)
}

/// What a restoration came to.
enum Outcome {
    /// The restored image, how it was decided, and a doubt about the request if any.
    Restored { png: Vec<u8>, decision: String, tasks: Vec<Task>, warning: Option<String> },
    /// Nothing to do, and why.
    Unchanged(String),
}

impl IntoResponse for Outcome {
    fn into_response(self) -> Response {
        match self {
            Outcome::Restored { png, decision, tasks, warning } => {
                let names: Vec<&str> = tasks.iter().map(|task| task.name()).collect();
                let mut headers = vec![
                    (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
                    (HeaderName::from_static(DECISION_HEADER), header_text(&decision)),
                    (HeaderName::from_static(TASKS_HEADER), header_text(&names.join(","))),
                ];
                headers.extend(warning.map(|warning| (HeaderName::from_static(WARNING_HEADER), header_text(&warning))));
                let mut response = png.into_response();
                for (name, value) in headers {
                    response.headers_mut().insert(name, value);
                }
                response
            }
            Outcome::Unchanged(reason) => Json(serde_json::json!({ "unchanged": true, "reason": reason })).into_response(),
        }
    }
}

/// `text` as a header value: characters a header cannot hold become `?`.
fn header_text(text: &str) -> HeaderValue {
    let visible: String = text.chars().map(|c| if c == ' ' || c.is_ascii_graphic() { c } else { '?' }).collect();
    HeaderValue::from_str(&visible).expect("visible ASCII is a valid header value")
}

/// `POST /api/restore`.
async fn restore(
    State(state): State<AppState>,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Outcome, ApiError> {
    let form = form.map_err(|rejection| ApiError::bad_request("bad_form", rejection.body_text()))?;
    let upload_timeout = state.limits.upload_timeout;
    let admitted = match state.queue.admit() {
        Ok(admitted) => admitted,
        Err(busy) => {
            // Read past the upload without keeping it, so the client gets the answer instead
            // of a connection closed in the middle of its upload.
            let _ = tokio::time::timeout(upload_timeout, request::discard(form)).await;
            return Err(busy);
        }
    };
    let form = tokio::time::timeout(upload_timeout, request::read(form)).await.map_err(|_| {
        let message = format!("the upload took longer than the server's {} s limit", upload_timeout.as_secs_f64());
        ApiError::new(StatusCode::REQUEST_TIMEOUT, "upload_timeout", message)
    })??;
    let tasks = match &form.ask {
        Ask::Task(task) => Some((vec![(*task, 1.0)], format!("task {task}"))),
        Ask::Instruction(text) => match state.models.router.route(text).decision {
            Decision::Restore(weights) => {
                let decision = format!("instruction understood as {}", describe_request(&weights));
                Some((weights, decision))
            }
            Decision::Unchanged(reason) => return Ok(Outcome::Unchanged(reason)),
        },
        Ask::Blind => None,
    };
    let (models, max_megapixels) = (state.models.clone(), state.limits.max_megapixels);
    admitted.run(move || restore_now(&models, form, tasks, max_megapixels)).await
}

/// Decodes and restores the upload: with `asked` (weights and the decision in words), checked
/// against the photo, or blind.
fn restore_now(
    models: &Models,
    form: RestoreForm,
    asked: Option<(Vec<(Task, f32)>, String)>,
    max_megapixels: f64,
) -> Result<Outcome, ApiError> {
    let image = decode_image_within(&form.image, Path::new(&form.name), max_megapixels)?;
    drop(form.image);
    let Some((weights, decision)) = asked else {
        let blind = models.restorer.restore_blind(&image, &models.recogniser)?;
        let seen = blind.recognition.summary();
        let Some(restored) = blind.image else {
            return Ok(Outcome::Unchanged(format!("the photo {seen}: left unchanged")));
        };
        let order: Vec<&str> = blind.tasks.iter().map(|task| task.name()).collect();
        let decision = format!("blind: the photo {seen}; restored with {}", order.join(" then "));
        return Ok(Outcome::Restored { png: png::encode(&restored)?, decision, tasks: blind.tasks, warning: None });
    };
    let requested: Vec<Task> = weights.iter().map(|(task, _)| *task).collect();
    let warning = models.recogniser.recognise_image(&image).doubt(&requested).map(|doubt| doubt.to_string());
    if let (true, Some(doubt)) = (form.strict, &warning) {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "doubted", format!("{doubt} (strict: not restored)")));
    }
    let restored = models.restorer.restore_requested(&image, &weights)?;
    Ok(Outcome::Restored { png: png::encode(&restored)?, decision, tasks: application_order(&weights), warning })
}

/// The body of `POST /api/parse`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParseRequest {
    instruction: String,
}

/// The answer of `POST /api/parse`.
#[derive(Serialize)]
struct ParseResponse {
    /// Probability of each intent (the six tasks and `none`).
    probabilities: BTreeMap<&'static str, f32>,
    /// The tasks a restoration would use, with their weights; empty when left unchanged.
    restore: Vec<TaskWeight>,
    /// Why the image would be left unchanged, when it would.
    unchanged: Option<String>,
    /// The decision in words.
    decision: String,
}

/// One task of a decision.
#[derive(Serialize)]
struct TaskWeight {
    task: &'static str,
    weight: f32,
}

/// `POST /api/parse`.
async fn parse(State(state): State<AppState>, body: Result<Json<ParseRequest>, JsonRejection>) -> Result<Json<ParseResponse>, ApiError> {
    let Json(body) = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "the request is larger than an instruction needs")
        }
        status => ApiError::new(status, "bad_json", rejection.body_text()),
    })?;
    if body.instruction.chars().count() > request::MAX_INSTRUCTION_CHARS {
        return Err(ApiError::bad_request(
            "instruction_too_long",
            format!("the instruction is longer than {} characters", request::MAX_INSTRUCTION_CHARS),
        ));
    }
    let routing = state.models.router.route(&body.instruction);
    let probabilities = Intent::ALL.iter().map(|&intent| (intent.name(), routing.probabilities[intent.index()])).collect();
    Ok(Json(match routing.decision {
        Decision::Restore(weights) => ParseResponse {
            probabilities,
            decision: format!("restore with {}", describe_request(&weights)),
            restore: weights.iter().map(|&(task, weight)| TaskWeight { task: task.name(), weight }).collect(),
            unchanged: None,
        },
        Decision::Unchanged(reason) => {
            ParseResponse { probabilities, decision: format!("leave unchanged ({reason})"), restore: Vec::new(), unchanged: Some(reason) }
        }
    }))
}

/// `GET /api/info`: the model, its tasks, the limits and the queue's load now.
async fn info(State(state): State<AppState>) -> Json<serde_json::Value> {
    let metadata = state.models.restorer.metadata();
    let tasks: Vec<&str> = metadata.tasks.iter().map(|task| task.name()).collect();
    let limits = &state.limits;
    Json(serde_json::json!({
        "name": "instruct-ipt",
        "version": env!("CARGO_PKG_VERSION"),
        "weights": state.models.weights,
        "tasks": tasks,
        "limits": {
            "max_upload_bytes": limits.max_upload_bytes,
            "max_megapixels": limits.max_megapixels,
            "workers": limits.workers,
            "queue": limits.queue,
            "timeout_s": limits.timeout.as_secs_f64(),
            "upload_timeout_s": limits.upload_timeout.as_secs_f64(),
            "header_timeout_s": limits.header_timeout.as_secs_f64(),
            "connections": limits.connections,
        },
        "load": state.queue.load(),
    }))
}
