//! Prices per upstream model, in US dollars per million tokens, and the cost of a request.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::record::Tokens;

/// The price of one model. Cached input and cache writes default to the input price when not
/// given, which is what an upstream without prompt caching charges.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Per million input tokens that were neither cache reads nor cache writes.
    pub input: f64,
    /// Per million input tokens read from the upstream's prompt cache.
    pub cached_input: Option<f64>,
    /// Per million input tokens written to the upstream's prompt cache.
    pub cache_write: Option<f64>,
    /// Per million output tokens (reasoning included).
    pub output: f64,
}

impl Price {
    const fn new(input: f64, cached_input: f64, cache_write: f64, output: f64) -> Self {
        Price { input, cached_input: Some(cached_input), cache_write: Some(cache_write), output }
    }

    /// The cost of `tokens` at this price.
    pub fn cost(&self, tokens: &Tokens) -> f64 {
        let cached = tokens.cached_input.min(tokens.input);
        let writes = tokens.cache_write.min(tokens.input - cached);
        let plain = tokens.input - cached - writes;
        let per_token = |per_million: f64| per_million / 1e6;
        plain as f64 * per_token(self.input)
            + cached as f64 * per_token(self.cached_input.unwrap_or(self.input))
            + writes as f64 * per_token(self.cache_write.unwrap_or(self.input))
            + tokens.output as f64 * per_token(self.output)
    }

    fn validate(&self) -> bool {
        [Some(self.input), self.cached_input, self.cache_write, Some(self.output)]
            .into_iter()
            .flatten()
            .all(|p| p.is_finite() && p >= 0.0)
    }
}

/// The shipped prices (USD per million tokens, list prices of the providers' own APIs) of the
/// models the embedded default names. A `[pricing]` entry replaces the one for its model.
pub const DEFAULT_PRICES: &[(&str, Price)] = &[
    ("gpt-4o-mini", Price::new(0.15, 0.075, 0.15, 0.60)),
    ("gpt-4o", Price::new(2.50, 1.25, 2.50, 10.00)),
    ("gpt-4.1", Price::new(2.00, 0.50, 2.00, 8.00)),
    ("gpt-4.1-mini", Price::new(0.40, 0.10, 0.40, 1.60)),
    ("gpt-4.1-nano", Price::new(0.10, 0.025, 0.10, 0.40)),
    ("gpt-5", Price::new(1.25, 0.125, 1.25, 10.00)),
    ("gpt-5-mini", Price::new(0.25, 0.025, 0.25, 2.00)),
    ("o4-mini", Price::new(1.10, 0.275, 1.10, 4.40)),
    ("claude-sonnet-4-5", Price::new(3.00, 0.30, 3.75, 15.00)),
    ("claude-haiku-4-5", Price::new(1.00, 0.10, 1.25, 5.00)),
    ("claude-opus-4-1", Price::new(15.00, 1.50, 18.75, 75.00)),
    ("anthropic.claude-sonnet-4-5-v1:0", Price::new(3.00, 0.30, 3.75, 15.00)),
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", Price::new(3.00, 0.30, 3.75, 15.00)),
    ("us.amazon.nova-lite-v1:0", Price::new(0.06, 0.015, 0.06, 0.24)),
    ("gemini-2.5-pro", Price::new(1.25, 0.31, 1.25, 10.00)),
    ("gemini-2.5-flash", Price::new(0.30, 0.075, 0.30, 2.50)),
    ("gemini-2.5-flash-lite", Price::new(0.10, 0.025, 0.10, 0.40)),
];

/// Prices by upstream model id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pricing {
    prices: BTreeMap<String, Price>,
}

impl Pricing {
    /// The shipped table with `overrides` on top.
    ///
    /// # Errors
    /// The model whose price is negative or not a number.
    pub fn with_defaults(overrides: &BTreeMap<String, Price>) -> Result<Self, String> {
        let mut prices: BTreeMap<String, Price> =
            DEFAULT_PRICES.iter().map(|(m, p)| ((*m).to_owned(), *p)).collect();
        for (model, price) in overrides {
            if !price.validate() {
                return Err(model.clone());
            }
            prices.insert(model.clone(), *price);
        }
        Ok(Pricing { prices })
    }

    /// The price of an upstream model.
    pub fn price(&self, upstream_model: &str) -> Option<&Price> {
        self.prices.get(upstream_model)
    }

    /// The cost of `tokens` on `upstream_model`; 0 when it has no price.
    pub fn cost(&self, upstream_model: &str, tokens: &Tokens) -> f64 {
        self.price(upstream_model).map_or(0.0, |p| p.cost(tokens))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_reads_and_writes_are_priced_apart_from_plain_input() {
        let price = Price::new(3.0, 0.30, 3.75, 15.0);
        let tokens = Tokens {
            input: 1_000_000,
            cached_input: 600_000,
            cache_write: 100_000,
            output: 200_000,
            reasoning: 0,
        };
        // 300k plain × $3 + 600k cached × $0.30 + 100k writes × $3.75 + 200k out × $15.
        let expected = 0.9 + 0.18 + 0.375 + 3.0;
        assert!((price.cost(&tokens) - expected).abs() < 1e-9, "{}", price.cost(&tokens));
    }

    #[test]
    fn overrides_replace_the_shipped_price_and_unknown_models_cost_nothing() {
        let mut overrides = BTreeMap::new();
        overrides.insert(
            "gpt-4o-mini".to_owned(),
            Price { input: 1.0, cached_input: None, cache_write: None, output: 2.0 },
        );
        let pricing = Pricing::with_defaults(&overrides).unwrap();
        let tokens = Tokens {
            input: 500_000,
            cached_input: 500_000,
            output: 1_000_000,
            ..Tokens::default()
        };
        // Without a cached price, cache reads cost the input price.
        assert!((pricing.cost("gpt-4o-mini", &tokens) - 2.5).abs() < 1e-9);
        assert_eq!(pricing.cost("no-such-model", &tokens), 0.0);
        assert!(pricing.price("claude-sonnet-4-5").is_some());
        overrides.insert(
            "bad".to_owned(),
            Price { input: -1.0, cached_input: None, cache_write: None, output: 0.0 },
        );
        assert_eq!(Pricing::with_defaults(&overrides).unwrap_err(), "bad");
    }
}
