//! OpenAI `ChatRequest` → Gemini `GenerateContentRequest`, and the endpoint and headers for it.
//!
//! Roles: `system`/`developer` → `systemInstruction` (a system-only conversation becomes a user
//! turn, since Gemini needs `contents`); `user` → `user`; `assistant` → `model` (text, then one
//! `functionCall` part per tool call, arguments kept byte for byte); consecutive `tool` (and
//! legacy `function`) messages → ONE `user` turn of `functionResponse` parts, the name recovered
//! from the assistant call with the same id. `generationConfig`: `maxOutputTokens`
//! (`max_completion_tokens`, else `max_tokens`), `temperature`, `topP`, `topK` (the `top_k`
//! extension field), `stopSequences`, `candidateCount` (`n`), `seed`, `presencePenalty`,
//! `frequencyPenalty`, `responseMimeType`/`responseSchema` (`response_format`), `thinkingConfig`
//! (`reasoning_effort`, see [`thinking_config`]). Not sent (no Gemini equivalent, or output Prism
//! does not translate): `logprobs`, `top_logprobs`, `logit_bias`, `parallel_tool_calls`, `user`,
//! `metadata`, and assistant `reasoning_content` (thought summaries are not replayed).

use std::collections::HashMap;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use prism_types::{
    ChatRequest, Content as OaContent, ContentPart, FileRef, ImageUrl, Message, ResponseFormat,
    ToolChoice, ToolChoiceMode,
};
use serde_json::value::RawValue;

use super::wire::{
    Blob, Content, FileData, FunctionCallOut, FunctionCallingConfig, FunctionDeclaration,
    FunctionResponse, GenerateContentRequest, GenerationConfig, Part, SystemInstruction,
    ThinkingConfig, ToolConfig, ToolDecl,
};
use super::{schema, tool_id};
use crate::{BuildOptions, Credentials, Deployment, ProviderKind, TranslateError};

/// Google's documented placeholder for a replayed Gemini 3 function call whose real thought
/// signature was lost (e.g. the conversation started on another provider).
pub(crate) const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

/// Builds the HTTP request for `req` on a Gemini API or Vertex AI deployment.
pub(crate) fn build_request(
    req: &ChatRequest,
    deployment: &Deployment,
    opts: &BuildOptions,
) -> Result<http::Request<Bytes>, TranslateError> {
    let url = endpoint(deployment, opts.stream)?;
    let body = build_body(req, deployment)?;
    let body = serde_json::to_vec(&body)
        .map_err(|e| invalid(None, format!("cannot encode the request: {e}")))?;

    let mut builder = http::Request::builder()
        .method(http::Method::POST)
        .uri(&url)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if opts.stream {
        builder = builder.header(ACCEPT, HeaderValue::from_static("text/event-stream"));
    }
    match &deployment.credentials {
        Credentials::None => {}
        Credentials::ApiKey(key) => {
            builder = builder.header("x-goog-api-key", secret_header(key.expose(), "")?)
        }
        Credentials::Bearer(token) => {
            builder = builder.header(AUTHORIZATION, secret_header(token.expose(), "Bearer ")?)
        }
        Credentials::Aws { .. } => {
            return Err(invalid(
                None,
                "AWS credentials cannot authenticate to Gemini or Vertex AI".into(),
            ));
        }
    }
    builder
        .body(Bytes::from(body))
        .map_err(|_| invalid(None, format!("invalid upstream URL {url:?}")))
}

/// `{base}/v1beta/models/{model}:…` for the Gemini API,
/// `{base}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:…` for Vertex.
pub(crate) fn endpoint(deployment: &Deployment, stream: bool) -> Result<String, TranslateError> {
    let method = if stream { "streamGenerateContent?alt=sse" } else { "generateContent" };
    let base = deployment.base_url.trim_end_matches('/');
    let model = deployment.upstream_model.as_str();
    match deployment.kind {
        ProviderKind::Vertex => {
            let project =
                deployment.project.as_deref().filter(|p| !p.is_empty()).ok_or_else(|| {
                    invalid(
                        None,
                        format!("vertex deployment of {model:?} has no project configured"),
                    )
                })?;
            let location =
                deployment.region.as_deref().filter(|l| !l.is_empty()).ok_or_else(|| {
                    invalid(
                        None,
                        format!(
                            "vertex deployment of {model:?} has no location (region) configured"
                        ),
                    )
                })?;
            check_segment("project", project, false)?;
            check_segment("location", location, false)?;
            check_segment("model", model, false)?;
            Ok(format!(
                "{base}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:{method}"
            ))
        }
        _ => {
            // A full resource name (`tunedModels/…`, `models/…`) is used as it is.
            check_segment("model", model, true)?;
            if model.contains('/') {
                Ok(format!("{base}/v1beta/{model}:{method}"))
            } else {
                Ok(format!("{base}/v1beta/models/{model}:{method}"))
            }
        }
    }
}

/// Maps the request body.
pub(crate) fn build_body(
    req: &ChatRequest,
    deployment: &Deployment,
) -> Result<GenerateContentRequest, TranslateError> {
    let model = deployment.upstream_model.as_str();
    let (mut contents, system) =
        map_messages(req, deployment.kind == ProviderKind::Gemini, is_gemini3(model))?;
    let system_instruction = match (contents.is_empty(), system) {
        // Gemini rejects a request without contents; a system-only conversation becomes a user turn.
        (true, Some(parts)) => {
            contents.push(Content { role: "user", parts });
            None
        }
        (_, system) => system.map(|parts| SystemInstruction { parts }),
    };

    let mut config = GenerationConfig {
        max_output_tokens: req.output_token_limit(),
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k(),
        stop_sequences: req.stop.as_ref().map(|s| s.to_vec()).unwrap_or_default(),
        candidate_count: req.n,
        seed: req.seed,
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        ..GenerationConfig::default()
    };
    config.stop_sequences.retain(|s| !s.is_empty());
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => config.response_mime_type = Some("application/json"),
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            config.response_mime_type = Some("application/json");
            config.response_schema = json_schema.schema.as_ref().map(schema::sanitize);
        }
    }
    if let Some(budget) = req.ext.thinking_budget {
        config.thinking_config = Some(budget_thinking_config(budget, model));
    } else if let Some(effort) = req.reasoning_effort.as_deref() {
        config.thinking_config = Some(thinking_config(effort, model)?);
    }

    let mut declarations = Vec::new();
    for (i, tool) in req.tools.iter().flatten().enumerate() {
        if tool.kind != "function" {
            return Err(invalid(
                Some(format!("tools[{i}].type")),
                format!("tool type {:?} is not supported by Gemini", tool.kind),
            ));
        }
        let parameters = tool
            .function
            .parameters
            .as_ref()
            .map(schema::sanitize)
            .filter(|p| !schema::is_empty_object(p));
        declarations.push(FunctionDeclaration {
            name: tool.function.name.clone(),
            description: tool.function.description.clone().filter(|d| !d.is_empty()),
            parameters,
        });
    }
    let tool_config = match (&req.tool_choice, declarations.is_empty()) {
        (Some(choice), false) => {
            Some(ToolConfig { function_calling_config: calling_config(choice) })
        }
        _ => None,
    };
    let tools = if declarations.is_empty() {
        Vec::new()
    } else {
        vec![ToolDecl { function_declarations: declarations }]
    };

    Ok(GenerateContentRequest {
        contents,
        system_instruction,
        generation_config: (!config.is_empty()).then_some(config),
        tools,
        tool_config,
    })
}

/// Whether the model is a Gemini 3 model (thinking levels, mandatory thought signatures).
pub(crate) fn is_gemini3(model: &str) -> bool {
    model.contains("gemini-3")
}

/// An explicit thinking budget (a Messages request's `thinking.budget_tokens`) → `thinkingConfig`:
/// the budget itself, clamped to the 512–24576 every Gemini 2.5 model accepts, or for Gemini 3
/// the level whose budget it is nearest (`high` from 8192 up).
pub(crate) fn budget_thinking_config(budget: u64, model: &str) -> ThinkingConfig {
    if is_gemini3(model) {
        let level = if budget >= 8192 { "high" } else { "low" };
        ThinkingConfig {
            thinking_level: Some(level),
            thinking_budget: None,
            include_thoughts: Some(true),
        }
    } else {
        let budget = i64::try_from(budget.clamp(512, 24_576)).unwrap_or(24_576);
        ThinkingConfig {
            thinking_level: None,
            thinking_budget: Some(budget),
            include_thoughts: Some(true),
        }
    }
}

/// `reasoning_effort` → `thinkingConfig`.
///
/// | effort | Gemini 3 `thinkingLevel` | other models `thinkingBudget` | `includeThoughts` |
/// |---|---|---|---|
/// | `none` | `low` (cannot be turned off) | 0 | no |
/// | `minimal` | `low` | 512 | yes |
/// | `low` | `low` | 1024 | yes |
/// | `medium` | `high` | 8192 | yes |
/// | `high` | `high` | 16384 | yes |
/// | `xhigh` | `high` | 24576 | yes |
///
/// Gemini 3 Pro knows only `low` and `high`, so only those two levels are sent. The budgets stay
/// within every Gemini 2.5 model's range (Flash-Lite's minimum is 512, Flash's maximum 24576);
/// 2.5 Pro cannot disable thinking and answers 400 to a budget of 0.
pub(crate) fn thinking_config(effort: &str, model: &str) -> Result<ThinkingConfig, TranslateError> {
    let (level, budget) = match effort {
        "none" => ("low", 0),
        "minimal" => ("low", 512),
        "low" => ("low", 1024),
        "medium" => ("high", 8192),
        "high" => ("high", 16_384),
        "xhigh" => ("high", 24_576),
        other => {
            return Err(invalid(
                Some("reasoning_effort".into()),
                format!(
                    "unknown reasoning_effort {other:?} (expected none, minimal, low, medium, high or xhigh)"
                ),
            ));
        }
    };
    let include_thoughts = (effort != "none").then_some(true);
    Ok(if is_gemini3(model) {
        ThinkingConfig { thinking_level: Some(level), thinking_budget: None, include_thoughts }
    } else {
        ThinkingConfig { thinking_level: None, thinking_budget: Some(budget), include_thoughts }
    })
}

fn calling_config(choice: &ToolChoice) -> FunctionCallingConfig {
    match choice {
        ToolChoice::Mode(ToolChoiceMode::Auto) => {
            FunctionCallingConfig { mode: "AUTO", allowed_function_names: vec![] }
        }
        ToolChoice::Mode(ToolChoiceMode::None) => {
            FunctionCallingConfig { mode: "NONE", allowed_function_names: vec![] }
        }
        ToolChoice::Mode(ToolChoiceMode::Required) => {
            FunctionCallingConfig { mode: "ANY", allowed_function_names: vec![] }
        }
        ToolChoice::Named(named) => FunctionCallingConfig {
            mode: "ANY",
            allowed_function_names: vec![named.function.name.clone()],
        },
    }
}

/// Messages → `contents` plus the system instruction's parts.
///
/// `send_ids`: replay call ids on `functionCall`/`functionResponse` (the Gemini API matches on
/// them; Vertex gets none, as the Vercel SDK does). `gemini3`: a model turn whose first call has
/// no thought signature gets [`SKIP_SIGNATURE`].
fn map_messages(
    req: &ChatRequest,
    send_ids: bool,
    gemini3: bool,
) -> Result<(Vec<Content>, Option<Vec<Part>>), TranslateError> {
    // A tool message carries only the call id; the function name comes from the assistant turn.
    let mut names: HashMap<&str, &str> = HashMap::new();
    for msg in &req.messages {
        if let Message::Assistant { tool_calls: Some(calls), .. } = msg {
            for call in calls {
                names.insert(call.id.as_str(), call.function.name.as_str());
            }
        }
    }

    let mut contents: Vec<Content> = Vec::new();
    let mut system: Vec<Part> = Vec::new();
    // Consecutive tool results form ONE user turn: Gemini wants as many functionResponse parts
    // as the model turn had functionCall parts.
    let mut responses: Vec<Part> = Vec::new();
    let flush = |responses: &mut Vec<Part>, contents: &mut Vec<Content>| {
        if !responses.is_empty() {
            contents.push(Content { role: "user", parts: std::mem::take(responses) });
        }
    };

    for (i, msg) in req.messages.iter().enumerate() {
        match msg {
            Message::System { content, .. } | Message::Developer { content, .. } => {
                system.extend(text_parts(content));
            }
            Message::User { content, .. } => {
                flush(&mut responses, &mut contents);
                contents.push(Content { role: "user", parts: user_parts(content, i)? });
            }
            Message::Assistant { content, refusal, tool_calls, .. } => {
                flush(&mut responses, &mut contents);
                let mut parts = Vec::new();
                let text = content.as_ref().map(OaContent::joined_text).unwrap_or_default();
                match (text.is_empty(), refusal) {
                    (false, _) => parts.push(Part::text(text)),
                    (true, Some(r)) if !r.is_empty() => parts.push(Part::text(r.clone())),
                    _ => {}
                }
                for (j, call) in tool_calls.iter().flatten().enumerate() {
                    let param =
                        || Some(format!("messages[{i}].tool_calls[{j}].function.arguments"));
                    let args = object_json(&call.function.arguments).ok_or_else(|| {
                        invalid(
                            param(),
                            format!("arguments of tool call {:?} are not a JSON object", call.id),
                        )
                    })?;
                    let (base_id, mut signature) = tool_id::decode(&call.id);
                    if gemini3 && j == 0 && signature.is_none() {
                        signature = Some(SKIP_SIGNATURE.to_owned());
                    }
                    parts.push(Part {
                        function_call: Some(FunctionCallOut {
                            id: send_ids.then(|| base_id.to_owned()),
                            name: call.function.name.clone(),
                            args,
                        }),
                        thought_signature: signature,
                        ..Part::default()
                    });
                }
                // An assistant turn with nothing in it would be rejected ("parts must not be empty").
                if !parts.is_empty() {
                    contents.push(Content { role: "model", parts });
                }
            }
            Message::Tool { content, tool_call_id } => {
                let name = names.get(tool_call_id.as_str()).ok_or_else(|| {
                    invalid(
                        Some(format!("messages[{i}].tool_call_id")),
                        format!("tool message answers {tool_call_id:?}, which no earlier assistant message called"),
                    )
                })?;
                let (base_id, _) = tool_id::decode(tool_call_id);
                responses.push(function_response(
                    name,
                    send_ids.then_some(base_id),
                    &content.joined_text(),
                )?);
            }
            Message::Function { content, name } => {
                responses.push(function_response(name, None, content.as_deref().unwrap_or(""))?);
            }
        }
    }
    flush(&mut responses, &mut contents);
    Ok((contents, (!system.is_empty()).then_some(system)))
}

fn function_response(name: &str, id: Option<&str>, text: &str) -> Result<Part, TranslateError> {
    let response =
        response_object(text).ok_or_else(|| invalid(None, "cannot encode a tool result".into()))?;
    Ok(Part {
        function_response: Some(FunctionResponse {
            id: id.map(str::to_owned),
            name: name.to_owned(),
            response,
        }),
        ..Part::default()
    })
}

/// `functionResponse.response` must be an object: a JSON object result is sent as it is,
/// any other JSON value or plain text is wrapped as `{"result": …}`.
fn response_object(text: &str) -> Option<Box<RawValue>> {
    if let Some(obj) = object_json(text).filter(|_| !text.trim().is_empty()) {
        return Some(obj);
    }
    let trimmed = text.trim();
    let inner = match serde_json::from_str::<&RawValue>(trimmed) {
        Ok(raw) if !trimmed.is_empty() => raw.get().to_owned(),
        _ => serde_json::to_string(text).ok()?,
    };
    RawValue::from_string(format!("{{\"result\":{inner}}}")).ok()
}

/// The text as a JSON object, keeping the client's bytes; empty text counts as `{}`.
fn object_json(text: &str) -> Option<Box<RawValue>> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return RawValue::from_string("{}".to_owned()).ok();
    }
    if !trimmed.starts_with('{') {
        return None;
    }
    RawValue::from_string(trimmed.to_owned()).ok()
}

fn text_parts(content: &OaContent) -> Vec<Part> {
    match content {
        OaContent::Text(s) if s.is_empty() => Vec::new(),
        OaContent::Text(s) => vec![Part::text(s.clone())],
        OaContent::Parts(parts) => parts
            .iter()
            .filter_map(|p| match p {
                ContentPart::Text { text } if !text.is_empty() => Some(Part::text(text.clone())),
                _ => None,
            })
            .collect(),
    }
}

fn user_parts(content: &OaContent, i: usize) -> Result<Vec<Part>, TranslateError> {
    let mut out = Vec::new();
    match content {
        OaContent::Text(s) => out.push(Part::text(s.clone())),
        OaContent::Parts(parts) => {
            for (j, part) in parts.iter().enumerate() {
                match part {
                    ContentPart::Text { text } => out.push(Part::text(text.clone())),
                    ContentPart::Refusal { refusal } => out.push(Part::text(refusal.clone())),
                    ContentPart::ImageUrl { image_url } => out.push(image_part(image_url, i, j)?),
                    ContentPart::InputAudio { input_audio } => out.push(Part {
                        inline_data: Some(Blob {
                            mime_type: format!("audio/{}", input_audio.format),
                            data: input_audio.data.clone(),
                        }),
                        ..Part::default()
                    }),
                    ContentPart::File { file } => out.push(file_part(file, i, j)?),
                }
            }
        }
    }
    if out.is_empty() {
        out.push(Part::text(""));
    }
    Ok(out)
}

/// Images: `data:` URLs become `inlineData`; `http(s)://` and `gs://` URLs become `fileData`
/// with the media type guessed from the file extension (see [`guess_mime`]).
fn image_part(image: &ImageUrl, i: usize, j: usize) -> Result<Part, TranslateError> {
    if let Some((mime, data)) = image.as_data_url() {
        return Ok(Part {
            inline_data: Some(Blob { mime_type: mime.to_owned(), data: data.to_owned() }),
            ..Part::default()
        });
    }
    let url = image.url.as_str();
    if is_remote(url) {
        return Ok(Part {
            file_data: Some(FileData {
                mime_type: guess_mime(url, "image/jpeg").to_owned(),
                file_uri: url.to_owned(),
            }),
            ..Part::default()
        });
    }
    Err(invalid(
        Some(format!("messages[{i}].content[{j}].image_url.url")),
        "image_url must be an http(s) or gs:// URL or a base64 data: URL".into(),
    ))
}

/// Files: a base64 `file_data` URL becomes `inlineData`; a `file_id` that is a Gemini file
/// (`files/…`) or a URL becomes `fileData` (media type from the file name, else PDF).
fn file_part(file: &FileRef, i: usize, j: usize) -> Result<Part, TranslateError> {
    if let Some(data_url) = &file.file_data {
        let image = ImageUrl { url: data_url.clone(), detail: None };
        if let Some((mime, data)) = image.as_data_url() {
            return Ok(Part {
                inline_data: Some(Blob { mime_type: mime.to_owned(), data: data.to_owned() }),
                ..Part::default()
            });
        }
        return Err(invalid(
            Some(format!("messages[{i}].content[{j}].file.file_data")),
            "file_data must be a base64 data: URL".into(),
        ));
    }
    if let Some(id) = file.file_id.as_deref().filter(|id| is_remote(id) || id.starts_with("files/"))
    {
        let name = file.filename.as_deref().unwrap_or(id);
        return Ok(Part {
            file_data: Some(FileData {
                mime_type: guess_mime(name, "application/pdf").to_owned(),
                file_uri: id.to_owned(),
            }),
            ..Part::default()
        });
    }
    Err(invalid(
        Some(format!("messages[{i}].content[{j}].file")),
        "Gemini needs file_data, or a file_id that is a Gemini file name (files/…) or a URL".into(),
    ))
}

fn is_remote(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://") || url.starts_with("gs://")
}

/// The media type for a URL or file name, from its extension (query and fragment ignored).
pub(crate) fn guess_mime<'a>(url: &str, default: &'a str) -> &'a str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let file = path.rsplit('/').next().unwrap_or(path);
    let Some((_, ext)) = file.rsplit_once('.') else { return default };
    match ext.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "ogg" => "audio/ogg",
        "mp4" => "video/mp4",
        "mov" => "video/mov",
        "webm" => "video/webm",
        _ => default,
    }
}

/// Path segments are pasted into the URL, so only characters of real ids pass.
fn check_segment(what: &str, value: &str, allow_slash: bool) -> Result<(), TranslateError> {
    let ok = !value.is_empty()
        && value.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && value.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'_' | b'.' | b'@')
                || (allow_slash && b == b'/')
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(None, format!("invalid {what} {value:?} in the deployment configuration")))
    }
}

fn secret_header(secret: &str, prefix: &str) -> Result<HeaderValue, TranslateError> {
    let mut value = HeaderValue::try_from(format!("{prefix}{secret}"))
        // The message never includes the secret.
        .map_err(|_| {
            invalid(None, "the configured credential is not a valid header value".into())
        })?;
    value.set_sensitive(true);
    Ok(value)
}

fn invalid(param: Option<String>, message: String) -> TranslateError {
    TranslateError::InvalidRequest { param, message }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::Secret;

    fn deployment(kind: ProviderKind) -> Deployment {
        let mut d = Deployment::new(kind, "https://example.test/", "gemini-2.5-flash");
        d.credentials = Credentials::ApiKey(Secret::new("k"));
        d
    }

    fn body(req: Value, kind: ProviderKind) -> Value {
        let req: ChatRequest = serde_json::from_value(req).unwrap();
        let body = build_body(&req, &deployment(kind)).unwrap();
        serde_json::to_value(&body).unwrap()
    }

    fn body_err(req: Value) -> String {
        let req: ChatRequest = serde_json::from_value(req).unwrap();
        match build_body(&req, &deployment(ProviderKind::Gemini)) {
            Ok(b) => panic!("expected an error, got {}", serde_json::to_string(&b).unwrap()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn endpoints_for_both_flavours() {
        let g = deployment(ProviderKind::Gemini);
        assert_eq!(
            endpoint(&g, true).unwrap(),
            "https://example.test/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            endpoint(&g, false).unwrap(),
            "https://example.test/v1beta/models/gemini-2.5-flash:generateContent"
        );
        let mut tuned = g.clone();
        tuned.upstream_model = "tunedModels/my-model-7".into();
        assert_eq!(
            endpoint(&tuned, false).unwrap(),
            "https://example.test/v1beta/tunedModels/my-model-7:generateContent"
        );

        let mut v = deployment(ProviderKind::Vertex);
        assert!(endpoint(&v, true).unwrap_err().to_string().contains("no project"));
        v.project = Some("proj-1".into());
        assert!(endpoint(&v, true).unwrap_err().to_string().contains("no location"));
        v.region = Some("europe-west4".into());
        assert_eq!(
            endpoint(&v, true).unwrap(),
            "https://example.test/v1/projects/proj-1/locations/europe-west4/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        v.project = Some("../evil".into());
        assert!(endpoint(&v, true).is_err());
        let mut bad = g;
        bad.upstream_model = "models/../x".into();
        assert!(endpoint(&bad, true).is_err());
    }

    #[test]
    fn headers_carry_the_right_credential_and_never_print_it() {
        let req: ChatRequest = serde_json::from_value(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap();
        let mut d = deployment(ProviderKind::Gemini);
        d.credentials = Credentials::ApiKey(Secret::new("sekrit-key"));
        let built = build_request(&req, &d, &BuildOptions::default()).unwrap();
        assert_eq!(built.headers()["x-goog-api-key"], "sekrit-key");
        assert!(built.headers()["x-goog-api-key"].is_sensitive());
        assert!(!built.headers().contains_key(AUTHORIZATION));
        assert_eq!(built.headers()[ACCEPT], "text/event-stream");

        let mut v = deployment(ProviderKind::Vertex);
        v.project = Some("p".into());
        v.region = Some("global".into());
        v.credentials = Credentials::Bearer(Secret::new("ya29.token"));
        let built =
            build_request(&req, &v, &BuildOptions { stream: false, ..BuildOptions::default() })
                .unwrap();
        assert_eq!(built.headers()[AUTHORIZATION], "Bearer ya29.token");
        assert!(!built.headers().contains_key(ACCEPT));

        v.credentials = Credentials::ApiKey(Secret::new("bad\nkey"));
        let err = build_request(&req, &v, &BuildOptions::default()).unwrap_err().to_string();
        assert!(!err.contains("bad"), "{err}");
    }

    #[test]
    fn messages_roles_system_and_generation_config() {
        let out = body(
            json!({
                "model": "m",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "developer", "content": [{"type": "text", "text": "Use metric."}]},
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello!"},
                    {"role": "user", "content": [{"type": "text", "text": "Look"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                        {"type": "image_url", "image_url": {"url": "https://x.test/cat.JPG?size=2"}},
                        {"type": "image_url", "image_url": {"url": "gs://bucket/scan"}}]}
                ],
                "max_tokens": 100, "max_completion_tokens": 200, "temperature": 0.5, "top_p": 0.9,
                "stop": ["END", ""], "n": 2, "seed": 7, "presence_penalty": 0.1, "frequency_penalty": 0.2,
                "top_k": 40, "response_format": {"type": "json_object"}, "parallel_tool_calls": false
            }),
            ProviderKind::Gemini,
        );
        assert_eq!(
            out,
            json!({
                "contents": [
                    {"role": "user", "parts": [{"text": "Hi"}]},
                    {"role": "model", "parts": [{"text": "Hello!"}]},
                    {"role": "user", "parts": [
                        {"text": "Look"},
                        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}},
                        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/cat.JPG?size=2"}},
                        {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://bucket/scan"}}
                    ]}
                ],
                "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Use metric."}]},
                "generationConfig": {
                    "maxOutputTokens": 200, "temperature": 0.5, "topP": 0.9, "topK": 40,
                    "stopSequences": ["END"], "candidateCount": 2, "seed": 7,
                    "presencePenalty": 0.1, "frequencyPenalty": 0.2, "responseMimeType": "application/json"
                }
            })
        );
    }

    #[test]
    fn tool_round_trip_recovers_names_groups_results_and_reattaches_signatures() {
        let signed = tool_id::encode("chatcmpl-x", 0, 0, None, Some("c2lnbmF0dXJl"));
        let plain = tool_id::encode("chatcmpl-x", 0, 1, None, None);
        let out = body(
            json!({
                "model": "m",
                "messages": [
                    {"role": "user", "content": "Weather in Oslo and Rome?"},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": signed, "type": "function", "function": {"name": "weather", "arguments": "{\"city\": \"Oslo\"}"}},
                        {"id": plain, "type": "function", "function": {"name": "weather_v2", "arguments": ""}}
                    ]},
                    {"role": "tool", "tool_call_id": signed, "content": "{\"temp\": 3}"},
                    {"role": "tool", "tool_call_id": plain, "content": "sunny"},
                    {"role": "user", "content": "Thanks"}
                ]
            }),
            ProviderKind::Gemini,
        );
        let base = |id: &str| tool_id::decode(id).0.to_owned();
        assert_eq!(
            out["contents"],
            json!([
                {"role": "user", "parts": [{"text": "Weather in Oslo and Rome?"}]},
                {"role": "model", "parts": [
                    {"functionCall": {"id": base(&signed), "name": "weather", "args": {"city": "Oslo"}},
                     "thoughtSignature": "c2lnbmF0dXJl"},
                    {"functionCall": {"id": plain, "name": "weather_v2", "args": {}}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"id": base(&signed), "name": "weather", "response": {"temp": 3}}},
                    {"functionResponse": {"id": plain, "name": "weather_v2", "response": {"result": "sunny"}}}
                ]},
                {"role": "user", "parts": [{"text": "Thanks"}]}
            ])
        );
    }

    #[test]
    fn vertex_gets_no_ids_and_gemini3_gets_the_placeholder_signature() {
        let req: ChatRequest = serde_json::from_value(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "[1, 2]"}
            ]
        }))
        .unwrap();
        let mut v = deployment(ProviderKind::Vertex);
        v.upstream_model = "gemini-3-pro-preview".into();
        let out = serde_json::to_value(build_body(&req, &v).unwrap()).unwrap();
        assert_eq!(
            out["contents"][1]["parts"][0],
            json!({"functionCall": {"name": "f", "args": {}}, "thoughtSignature": SKIP_SIGNATURE})
        );
        assert_eq!(
            out["contents"][2]["parts"][0],
            json!({"functionResponse": {"name": "f", "response": {"result": [1, 2]}}})
        );
    }

    #[test]
    fn tool_result_wrapping() {
        let text =
            |t: &str| serde_json::from_str::<Value>(response_object(t).unwrap().get()).unwrap();
        assert_eq!(text("{\"a\":1}"), json!({"a": 1}));
        assert_eq!(text(" 42 "), json!({"result": 42}));
        assert_eq!(text("\"Paris\""), json!({"result": "Paris"}));
        assert_eq!(text("Paris"), json!({"result": "Paris"}));
        assert_eq!(text("{broken"), json!({"result": "{broken"}));
        assert_eq!(text(""), json!({"result": ""}));
    }

    #[test]
    fn tools_schema_and_tool_choice() {
        let tools = json!([
            {"type": "function", "function": {"name": "now", "description": "", "parameters": {"type": "object", "properties": {}, "additionalProperties": false}}},
            {"type": "function", "function": {"name": "weather", "description": "Weather.", "parameters": {
                "type": "object", "properties": {"unit": {"type": ["string", "null"], "enum": ["c", "f"]}}, "required": ["unit"]}}}
        ]);
        let choice = |c: Value| {
            body(
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools, "tool_choice": c}),
                ProviderKind::Gemini,
            )
        };
        let out = choice(json!("auto"));
        assert_eq!(
            out["tools"],
            json!([{"functionDeclarations": [
                {"name": "now"},
                {"name": "weather", "description": "Weather.", "parameters": {
                    "type": "OBJECT", "properties": {"unit": {"type": "STRING", "enum": ["c", "f"], "nullable": true}}, "required": ["unit"]}}
            ]}])
        );
        assert_eq!(out["toolConfig"], json!({"functionCallingConfig": {"mode": "AUTO"}}));
        assert_eq!(
            choice(json!("none"))["toolConfig"],
            json!({"functionCallingConfig": {"mode": "NONE"}})
        );
        assert_eq!(
            choice(json!("required"))["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY"}})
        );
        assert_eq!(
            choice(json!({"type": "function", "function": {"name": "weather"}}))["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}})
        );
        // No tools: no toolConfig even when a choice is given.
        let out = body(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "none"}),
            ProviderKind::Gemini,
        );
        assert!(out.get("toolConfig").is_none() && out.get("tools").is_none());
    }

    #[test]
    fn a_messages_clients_own_budget_and_top_k_reach_gemini() {
        let mut req: ChatRequest = serde_json::from_value(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "high"}),
        )
        .unwrap();
        req.ext.thinking_budget = Some(100_000);
        req.ext.top_k = Some(3);
        let out =
            serde_json::to_value(build_body(&req, &deployment(ProviderKind::Gemini)).unwrap())
                .unwrap();
        let config = &out["generationConfig"];
        assert_eq!(
            config["thinkingConfig"],
            json!({"thinkingBudget": 24_576, "includeThoughts": true})
        );
        assert_eq!(config["topK"], json!(3));
    }

    #[test]
    fn reasoning_effort_and_json_schema() {
        let out = body(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "low",
                   "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {
                       "type": "object", "properties": {"ok": {"type": "boolean"}}, "additionalProperties": false}}}}),
            ProviderKind::Gemini,
        );
        assert_eq!(
            out["generationConfig"],
            json!({"responseMimeType": "application/json",
                   "responseSchema": {"type": "OBJECT", "properties": {"ok": {"type": "BOOLEAN"}}},
                   "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": true}})
        );
        let level = |effort: &str| {
            serde_json::to_value(thinking_config(effort, "gemini-3-flash-preview").unwrap())
                .unwrap()
        };
        assert_eq!(level("minimal"), json!({"thinkingLevel": "low", "includeThoughts": true}));
        assert_eq!(level("high"), json!({"thinkingLevel": "high", "includeThoughts": true}));
        assert_eq!(level("none"), json!({"thinkingLevel": "low"}));
        let budget = |effort: &str| {
            serde_json::to_value(thinking_config(effort, "gemini-2.5-pro").unwrap()).unwrap()
        };
        assert_eq!(budget("none"), json!({"thinkingBudget": 0}));
        assert_eq!(budget("xhigh"), json!({"thinkingBudget": 24576, "includeThoughts": true}));
        assert!(thinking_config("extreme", "m").is_err());
    }

    #[test]
    fn invalid_requests_are_reported_with_their_param() {
        let e = body_err(
            json!({"model": "m", "messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}),
        );
        assert!(e.contains("\"nope\""), "{e}");
        let e = body_err(json!({"model": "m", "messages": [
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]}));
        assert!(e.contains("not a JSON object"), "{e}");
        let e = body_err(json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]}));
        assert!(e.contains("image_url"), "{e}");
        let e = body_err(json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "file", "file": {"file_id": "file-abc"}}]}]}));
        assert!(e.contains("file_id"), "{e}");
    }

    #[test]
    fn system_only_conversation_becomes_a_user_turn_and_empty_assistant_turns_are_dropped() {
        let out = body(
            json!({"model": "m", "messages": [{"role": "system", "content": "Tell a joke."}, {"role": "assistant", "content": ""}]}),
            ProviderKind::Gemini,
        );
        assert_eq!(
            out,
            json!({"contents": [{"role": "user", "parts": [{"text": "Tell a joke."}]}]})
        );
    }

    #[test]
    fn mime_guessing() {
        assert_eq!(guess_mime("https://x/a.PNG", "d"), "image/png");
        assert_eq!(guess_mime("https://x/a.webp#frag", "d"), "image/webp");
        assert_eq!(guess_mime("https://x.test/dir.v2/file", "d"), "d");
        assert_eq!(guess_mime("report.pdf", "d"), "application/pdf");
    }
}
