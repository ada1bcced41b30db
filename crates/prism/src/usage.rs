//! `prism usage`: the totals of `GET /v1/usage` as a table, for an admin key.

use anyhow::{Context, Result, bail};
use prism_client::Prism;
use serde_json::Value;

/// Arguments of `prism usage`.
#[derive(Debug, clap::Args)]
pub(crate) struct UsageArgs {
    /// Start of the range: Unix seconds or RFC 3339 (default: 24 hours before the end).
    #[arg(long)]
    pub start: Option<String>,
    /// End of the range, exclusive (default: now).
    #[arg(long)]
    pub end: Option<String>,
    /// Print the gateway's JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// An admin key of the gateway.
    #[arg(long, env = "PRISM_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// Gateway base URL.
    #[arg(long, env = "PRISM_BASE_URL", default_value = Prism::DEFAULT_BASE_URL)]
    pub base_url: String,
}

/// Fetches the report and prints it.
///
/// # Errors
/// Transport errors and the gateway's error message (a non-admin key is a 403).
pub(crate) async fn run(args: UsageArgs) -> Result<()> {
    let base = args.base_url.trim_end_matches('/').trim_end_matches("/v1");
    let mut query = Vec::new();
    if let Some(start) = &args.start {
        query.push(("start", start.as_str()));
    }
    if let Some(end) = &args.end {
        query.push(("end", end.as_str()));
    }
    let resp = reqwest::Client::new()
        .get(format!("{base}/v1/usage"))
        .bearer_auth(&args.api_key)
        .query(&query)
        .send()
        .await
        .with_context(|| format!("could not reach the gateway at {base}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.context("the gateway's answer is not JSON")?;
    if !status.is_success() {
        let message = body["error"]["message"].as_str().unwrap_or("no message");
        bail!("the gateway answered {status}: {message}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        print!("{}", table(&body));
    }
    Ok(())
}

/// The report as a fixed-width table with a total line.
fn table(report: &Value) -> String {
    const COLUMNS: [(&str, &str); 7] = [
        ("requests", "requests"),
        ("input_tokens", "input"),
        ("cached_input_tokens", "cached"),
        ("cache_write_tokens", "cache_write"),
        ("output_tokens", "output"),
        ("reasoning_tokens", "reasoning"),
        ("cost_usd", "cost_usd"),
    ];
    let rows: Vec<&Value> =
        report["data"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    let cell = |row: &Value, field: &str| match &row[field] {
        Value::Number(n) if field == "cost_usd" => format!("{:.6}", n.as_f64().unwrap_or(0.0)),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    let mut lines: Vec<Vec<String>> = vec![
        ["key", "model"]
            .into_iter()
            .chain(COLUMNS.iter().map(|c| c.1))
            .map(str::to_owned)
            .collect(),
    ];
    for row in rows.iter().copied().chain(std::iter::once(&report["total"])) {
        let mut line = vec![cell(row, "key"), cell(row, "model")];
        line.extend(COLUMNS.iter().map(|(field, _)| cell(row, field)));
        lines.push(line);
    }
    if let Some(total) = lines.last_mut() {
        total[0] = "total".to_owned();
    }
    let widths: Vec<usize> =
        (0..lines[0].len()).map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0)).collect();
    let mut out = format!(
        "usage from {} to {} ({})\n",
        report["start"].as_str().unwrap_or("?"),
        report["end"].as_str().unwrap_or("?"),
        report["source"].as_str().unwrap_or("?")
    );
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| if i < 2 { format!("{c:<w$}") } else { format!("{c:>w$}") })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_a_row_per_key_and_model_and_a_total() {
        let report = serde_json::json!({
            "start": "a", "end": "b", "source": "memory",
            "data": [{"key": "k", "model": "m", "requests": 2, "input_tokens": 10,
                      "cached_input_tokens": 0, "cache_write_tokens": 0, "output_tokens": 5,
                      "reasoning_tokens": 0, "cost_usd": 0.5}],
            "total": {"key": "", "model": "", "requests": 2, "input_tokens": 10,
                      "cached_input_tokens": 0, "cache_write_tokens": 0, "output_tokens": 5,
                      "reasoning_tokens": 0, "cost_usd": 0.5},
        });
        let text = table(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "usage from a to b (memory)");
        assert!(lines[1].starts_with("key    model  requests"), "{text}");
        assert!(lines[2].starts_with("k      m             2"), "{text}");
        assert!(lines[3].starts_with("total"), "{text}");
        assert!(lines[3].ends_with("0.500000"), "{text}");
    }
}
