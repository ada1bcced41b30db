//! The embedded default used by `prism serve` without `--config`: one development key, the
//! `demo/*` models on the in-process upstream simulator (cached in memory), real providers for
//! whichever provider credentials the environment holds (not cached), and the popular bare model
//! names (`gpt-4o-mini`, `claude-sonnet-4-5`, …) so code copied from a provider's or our own
//! docs works unchanged: each goes to the real provider when its credentials are set and to that
//! provider's simulator otherwise (`x-prism-provider` and the start-up banner say which).

use rand::Rng;
use rand::distributions::Alphanumeric;

use super::{
    Config, EnvLookup, Limits, ModelAccess, ModelRoute, RetryPolicy, RouteTarget, Timeouts,
    aws_env_credentials,
};
use crate::config::ClientKey;
use prism_cache::{CacheConfig, ModelCacheConfig};
use prism_providers::{Credentials, Deployment, ProviderKind, Secret};

/// The demo models: public name, provider kind, and the upstream model id sent to the simulator.
pub const DEMO_MODELS: [(&str, ProviderKind, &str); 4] = [
    ("demo/openai", ProviderKind::OpenAi, "gpt-4o-mini"),
    ("demo/anthropic", ProviderKind::Anthropic, "claude-sonnet-4-5"),
    ("demo/gemini", ProviderKind::Gemini, "gemini-2.5-flash"),
    ("demo/bedrock", ProviderKind::Bedrock, "anthropic.claude-sonnet-4-5-v1:0"),
];

/// Real models enabled by provider credentials in the environment: public name, upstream model.
const OPENAI_MODELS: [(&str, &str); 2] =
    [("openai/gpt-4.1-mini", "gpt-4.1-mini"), ("openai/gpt-4o", "gpt-4o")];
const ANTHROPIC_MODELS: [(&str, &str); 2] = [
    ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"),
    ("anthropic/claude-haiku-4-5", "claude-haiku-4-5"),
];
const GEMINI_MODELS: [(&str, &str); 2] =
    [("gemini/gemini-2.5-flash", "gemini-2.5-flash"), ("gemini/gemini-2.5-pro", "gemini-2.5-pro")];
const BEDROCK_MODELS: [(&str, &str); 2] = [
    ("bedrock/claude-sonnet-4-5", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("bedrock/nova-lite", "us.amazon.nova-lite-v1:0"),
];

/// Bare model names served by the embedded default, by the provider that owns them. The name is
/// also the upstream model id, for the real provider and the simulator alike.
pub const BARE_MODELS: [(&str, ProviderKind); 14] = [
    ("gpt-4o-mini", ProviderKind::OpenAi),
    ("gpt-4o", ProviderKind::OpenAi),
    ("gpt-4.1-mini", ProviderKind::OpenAi),
    ("gpt-4.1", ProviderKind::OpenAi),
    ("gpt-4.1-nano", ProviderKind::OpenAi),
    ("gpt-5-mini", ProviderKind::OpenAi),
    ("gpt-5", ProviderKind::OpenAi),
    ("o4-mini", ProviderKind::OpenAi),
    ("claude-sonnet-4-5", ProviderKind::Anthropic),
    ("claude-haiku-4-5", ProviderKind::Anthropic),
    ("claude-opus-4-1", ProviderKind::Anthropic),
    ("gemini-2.5-flash", ProviderKind::Gemini),
    ("gemini-2.5-pro", ProviderKind::Gemini),
    ("gemini-2.5-flash-lite", ProviderKind::Gemini),
];

/// The provider label of a simulated demo deployment (`x-prism-provider`).
pub fn demo_provider_label(kind: ProviderKind) -> String {
    format!("demo-{}", kind.as_str())
}

/// A real provider of the embedded default: kind, credentials (when set), base URL, models.
type RealProvider<'a> = (ProviderKind, Option<Credentials>, &'a str, &'a [(&'a str, &'a str)]);

/// Inputs of the embedded default.
#[derive(Clone, Copy)]
pub struct EmbeddedOptions<'a> {
    /// Base URL of the running upstream simulator the `demo/*` models point at.
    pub simulator_url: &'a str,
    /// The development client key (see [`generate_dev_key`]).
    pub dev_key: &'a str,
    /// Where provider credentials are looked up.
    pub env: EnvLookup<'a>,
}

impl std::fmt::Debug for EmbeddedOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedOptions")
            .field("simulator_url", &self.simulator_url)
            .finish_non_exhaustive()
    }
}

/// A random development key, `sk-prism-` followed by 32 letters and digits.
pub fn generate_dev_key() -> String {
    let tail: String =
        rand::thread_rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect();
    format!("sk-prism-{tail}")
}

impl Config {
    /// The embedded default configuration.
    pub fn embedded(opts: EmbeddedOptions<'_>) -> Config {
        let env = opts.env;
        let mut models = Vec::new();
        for (name, kind, upstream) in DEMO_MODELS {
            let mut deployment = Deployment::new(kind, opts.simulator_url, upstream);
            if kind == ProviderKind::Bedrock {
                deployment.region = Some("us-east-1".to_owned());
            }
            // Demo models are cached (in memory, default TTL): repeat a non-streaming request
            // to see `x-prism-cache: hit`.
            models.push(single(name, &demo_provider_label(kind), deployment, None));
        }
        let nonempty = |name: &str| env(name).filter(|v| !v.is_empty());
        let real: [RealProvider<'_>; 3] = [
            (
                ProviderKind::OpenAi,
                nonempty("OPENAI_API_KEY").map(|k| Credentials::ApiKey(Secret::new(k))),
                "https://api.openai.com",
                &OPENAI_MODELS,
            ),
            (
                ProviderKind::Anthropic,
                nonempty("ANTHROPIC_API_KEY").map(|k| Credentials::ApiKey(Secret::new(k))),
                "https://api.anthropic.com",
                &ANTHROPIC_MODELS,
            ),
            (
                ProviderKind::Gemini,
                nonempty("GEMINI_API_KEY")
                    .or_else(|| nonempty("GOOGLE_API_KEY"))
                    .map(|k| Credentials::ApiKey(Secret::new(k))),
                "https://generativelanguage.googleapis.com",
                &GEMINI_MODELS,
            ),
        ];
        for (kind, credentials, base_url, list) in &real {
            let Some(credentials) = credentials else { continue };
            for (name, upstream) in *list {
                let mut deployment = Deployment::new(*kind, *base_url, *upstream);
                deployment.credentials = credentials.clone();
                models.push(single(name, kind.as_str(), deployment, Some(NOT_CACHED)));
            }
        }
        for (name, kind) in BARE_MODELS {
            let real = real.iter().find(|(k, ..)| *k == kind);
            let route = match real {
                Some((_, Some(credentials), base_url, _)) => {
                    let mut deployment = Deployment::new(kind, *base_url, name);
                    deployment.credentials = credentials.clone();
                    single(name, kind.as_str(), deployment, Some(NOT_CACHED))
                }
                _ => {
                    let deployment = Deployment::new(kind, opts.simulator_url, name);
                    single(name, &demo_provider_label(kind), deployment, None)
                }
            };
            models.push(route);
        }
        if let Some(credentials) = aws_env_credentials(env) {
            let region = nonempty("AWS_REGION")
                .or_else(|| nonempty("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".to_owned());
            for (name, upstream) in BEDROCK_MODELS {
                let mut deployment = Deployment::new(
                    ProviderKind::Bedrock,
                    format!("https://bedrock-runtime.{region}.amazonaws.com"),
                    upstream,
                );
                deployment.credentials = credentials.clone();
                deployment.region = Some(region.clone());
                models.push(single(name, "bedrock", deployment, Some(NOT_CACHED)));
            }
        }
        Config {
            // Same address as `DEFAULT_LISTEN`, without a parse that could fail.
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
            // The developer's own gateway: the dev key may also read `/v1/usage`.
            keys: vec![ClientKey {
                admin: true,
                ..ClientKey::from_plain("dev", opts.dev_key, ModelAccess::All)
            }],
            models,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            retries: RetryPolicy::default(),
            usage_on_finish: true,
            cache: Some(CacheConfig::default()),
            guardrails: super::GuardrailPolicy::default(),
            usage: super::UsageSettings::default(),
            pricing: prism_ledger::Pricing::with_defaults(&Default::default()).unwrap_or_default(),
            telemetry: super::TelemetryConfig::from_env(opts.env),
        }
    }
}

/// Real providers found in the environment are not cached by the embedded default: a
/// development session with a real model should see fresh answers unless a config file asks
/// for caching.
const NOT_CACHED: ModelCacheConfig = ModelCacheConfig { enabled: false, ttl_secs: None };

fn single(
    name: &str,
    provider: &str,
    deployment: Deployment,
    cache: Option<ModelCacheConfig>,
) -> ModelRoute {
    ModelRoute {
        name: name.to_owned(),
        deployments: vec![RouteTarget {
            provider: provider.to_owned(),
            deployment,
            ttft_deadline: None,
        }],
        cache,
        limits: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_only_without_credentials() {
        let env = |_: &str| None;
        let c = Config::embedded(EmbeddedOptions {
            simulator_url: "http://127.0.0.1:1",
            dev_key: "sk-prism-x",
            env: &env,
        });
        let names: Vec<_> = c.models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names[..4], ["demo/openai", "demo/anthropic", "demo/gemini", "demo/bedrock"]);
        // The bare names all go to the simulator when no credentials are set.
        assert_eq!(names[4..], BARE_MODELS.map(|(name, _)| name));
        for (name, kind) in BARE_MODELS {
            let target = &c.model(name).unwrap().deployments[0];
            assert_eq!(target.provider, demo_provider_label(kind), "{name}");
            assert_eq!(target.deployment.base_url, "http://127.0.0.1:1");
            assert_eq!(target.deployment.upstream_model, name);
        }
        assert!(c.authenticate("sk-prism-x").is_some());
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn real_providers_follow_the_environment() {
        let env = |name: &str| match name {
            "ANTHROPIC_API_KEY" => Some("sk-ant-secret".to_owned()),
            "AWS_BEARER_TOKEN_BEDROCK" => Some("bedrock-token".to_owned()),
            "AWS_REGION" => Some("eu-central-1".to_owned()),
            _ => None,
        };
        let c = Config::embedded(EmbeddedOptions {
            simulator_url: "http://127.0.0.1:1",
            dev_key: "sk-prism-x",
            env: &env,
        });
        assert!(c.model("anthropic/claude-sonnet-4-5").is_some());
        assert!(c.model("openai/gpt-4o").is_none());
        let br = &c.model("bedrock/claude-sonnet-4-5").unwrap().deployments[0];
        assert_eq!(br.deployment.base_url, "https://bedrock-runtime.eu-central-1.amazonaws.com");
        assert_eq!(br.deployment.credentials, Credentials::Bearer(Secret::new("bedrock-token")));
        assert!(!format!("{c:?}").contains("sk-ant-secret"));
        // Bare names follow the credentials: Anthropic's are real, the others simulated.
        let claude = &c.model("claude-haiku-4-5").unwrap().deployments[0];
        assert_eq!(claude.provider, "anthropic");
        assert_eq!(claude.deployment.base_url, "https://api.anthropic.com");
        assert_eq!(
            claude.deployment.credentials,
            Credentials::ApiKey(Secret::new("sk-ant-secret"))
        );
        let gpt = &c.model("gpt-4o-mini").unwrap().deployments[0];
        assert_eq!(gpt.provider, "demo-openai");
        assert_eq!(gpt.deployment.base_url, "http://127.0.0.1:1");
    }

    #[test]
    fn dev_keys_are_random_and_prefixed() {
        let (a, b) = (generate_dev_key(), generate_dev_key());
        assert!(a.starts_with("sk-prism-") && a.len() == 41);
        assert_ne!(a, b);
    }
}
