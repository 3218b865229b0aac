//! The multipart form of `POST /api/restore`, read and checked.

use std::path::Path;

use axum::body::Bytes;
use axum::extract::Multipart;
use axum::extract::multipart::MultipartError;
use axum::http::StatusCode;
use instruct_ipt::Task;

use crate::ApiError;

/// The longest instruction accepted, in characters.
pub const MAX_INSTRUCTION_CHARS: usize = 1000;

/// What a restore request asks.
#[derive(Debug, PartialEq)]
pub struct RestoreForm {
    /// The uploaded file's bytes, as received (not copied).
    pub image: Bytes,
    /// The upload's file name, last component only: it names the image in messages and is
    /// never used as a path.
    pub name: String,
    /// What to do.
    pub ask: Ask,
    /// Refuse a request the photo contradicts instead of warning.
    pub strict: bool,
}

/// What a request asks for.
#[derive(Debug, PartialEq)]
pub enum Ask {
    /// This task.
    Task(Task),
    /// What this instruction says.
    Instruction(String),
    /// Whatever the recogniser sees.
    Blind,
}

/// Reads the form's fields: `image` (required), `instruction` or `task` (`auto` or empty:
/// neither), `strict` (`true`/`false`). Unknown fields are refused, so a misspelt one is not
/// silently ignored.
pub async fn read(mut form: Multipart) -> Result<RestoreForm, ApiError> {
    let (mut image, mut name, mut task, mut instruction, mut strict) = (None, String::from("upload"), None, None, false);
    while let Some(field) = form.next_field().await.map_err(malformed)? {
        let field_name = field.name().unwrap_or_default().to_string();
        match field_name.as_str() {
            "image" => {
                if let Some(file) = field.file_name().and_then(|file| Path::new(file).file_name()) {
                    name = file.to_string_lossy().into_owned();
                }
                image = Some(field.bytes().await.map_err(malformed)?);
            }
            "task" => task = Some(field.text().await.map_err(malformed)?),
            "instruction" => instruction = Some(field.text().await.map_err(malformed)?),
            "strict" => strict = parse_flag(&field.text().await.map_err(malformed)?)?,
            other => {
                return Err(ApiError::bad_request(
                    "unknown_field",
                    format!("unknown form field '{other}' (expected image, instruction, task, strict)"),
                ));
            }
        }
    }
    let image = image
        .filter(|bytes| !bytes.is_empty())
        .ok_or_else(|| ApiError::bad_request("missing_image", "no image was uploaded (form field 'image')"))?;
    Ok(RestoreForm { image, name, ask: ask(task, instruction)?, strict })
}

/// Reads the form to its end, keeping nothing: the answer to a request refused before its
/// upload is read. Stops at the first error (the body limit included).
pub async fn discard(mut form: Multipart) {
    while let Ok(Some(mut field)) = form.next_field().await {
        while let Ok(Some(_)) = field.chunk().await {}
    }
}

/// The request from the `task` and `instruction` fields.
fn ask(task: Option<String>, instruction: Option<String>) -> Result<Ask, ApiError> {
    let task = task.map(|text| text.trim().to_string()).filter(|text| !text.is_empty() && text != "auto");
    let instruction = instruction.map(|text| text.trim().to_string()).filter(|text| !text.is_empty());
    match (task, instruction) {
        (Some(_), Some(_)) => Err(ApiError::bad_request("conflicting_request", "give a task or an instruction, not both")),
        (Some(task), None) => task.parse().map(Ask::Task).map_err(|reason: String| ApiError::bad_request("unknown_task", reason)),
        (None, Some(text)) if text.chars().count() > MAX_INSTRUCTION_CHARS => {
            Err(ApiError::bad_request("instruction_too_long", format!("the instruction is longer than {MAX_INSTRUCTION_CHARS} characters")))
        }
        (None, Some(text)) => Ok(Ask::Instruction(text)),
        (None, None) => Ok(Ask::Blind),
    }
}

/// `true` or `false` (also `1`/`0`, `on`/`off`, empty = false).
fn parse_flag(text: &str) -> Result<bool, ApiError> {
    match text.trim() {
        "true" | "1" | "on" => Ok(true),
        "false" | "0" | "off" | "" => Ok(false),
        other => Err(ApiError::bad_request("bad_field", format!("strict must be true or false, not '{other}'"))),
    }
}

/// A form that cannot be read: too large for the upload limit, or not multipart.
fn malformed(error: MultipartError) -> ApiError {
    match error.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "the upload is larger than the server's limit")
        }
        status => ApiError::new(status, "bad_form", format!("cannot read the form: {}", error.body_text())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_and_instruction_become_one_request() {
        assert_eq!(ask(Some("derain".into()), None), Ok(Ask::Task(Task::Derain)));
        assert_eq!(ask(Some("auto".into()), Some(" remove the rain ".into())), Ok(Ask::Instruction("remove the rain".into())));
        assert_eq!(ask(Some(String::new()), Some("  ".into())), Ok(Ask::Blind));
        assert_eq!(ask(None, None), Ok(Ask::Blind));
        assert_eq!(ask(Some("derain".into()), Some("rain".into())).unwrap_err().code, "conflicting_request");
        let unknown = ask(Some("sharpen".into()), None).unwrap_err();
        assert!(unknown.code == "unknown_task" && unknown.message.contains("sharpen"), "{unknown:?}");
        assert_eq!(ask(None, Some("a".repeat(MAX_INSTRUCTION_CHARS + 1))).unwrap_err().code, "instruction_too_long");
    }

    #[test]
    fn flags_are_true_false_or_refused() {
        assert_eq!(["true", "1", "on", "false", "0", ""].map(|text| parse_flag(text).unwrap()), [true, true, true, false, false, false]);
        assert_eq!(parse_flag("maybe").unwrap_err().code, "bad_field");
    }
}
