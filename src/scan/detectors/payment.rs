//! Payments and commerce: Stripe, Square, PayPal/Braintree, Razorpay, Shopify, Flutterwave,
//! Plaid.

use super::assigned;
use crate::scan::detector::{Detector, Examples, Filter::*, Window};

pub(super) const DETECTORS: &[Detector] = &[
    Detector {
        id: "stripe-secret-key",
        description: "Stripe secret key (live or test, any length)",
        keywords: &["sk_live_", "sk_test_", "sk_prod_"],
        pattern: r"(?m)(?:^|[^A-Za-z0-9_])(?P<v>sk_(?:live|test|prod)_[A-Za-z0-9]{10,247})\b",
        filters: &[MinLen(20), NotPlaceholder, Entropy(3.5)],
        window: Window::Line,
        examples: Examples {
            positive: &[
                "STRIPE_SECRET_KEY=sk_live_{a:24}",
                "Stripe.api_key = 'sk_live_{a:99}'",
                "stripe.setApiKey(\"sk_test_{a:14}\");",
            ],
            negative: &["sk_test_xxxxxxxxxxxxxxxxxxxxxxxx", "sk_live_abc"],
        },
    },
    Detector {
        id: "stripe-restricted-key",
        description: "Stripe restricted key",
        keywords: &["rk_live_", "rk_test_", "rk_prod_"],
        pattern: r"(?m)(?:^|[^A-Za-z0-9_])(?P<v>rk_(?:live|test|prod)_[A-Za-z0-9]{10,247})\b",
        filters: &[MinLen(20), NotPlaceholder, Entropy(3.5)],
        window: Window::Line,
        examples: Examples {
            positive: &["STRIPE_KEY=rk_live_{a:24}"],
            negative: &["rk_live_{l:4}"],
        },
    },
    Detector {
        id: "stripe-webhook-secret",
        description: "Stripe webhook signing secret",
        keywords: &["whsec_"],
        pattern: r"\b(?P<v>whsec_[A-Za-z0-9+/=]{32,})",
        filters: &[NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["STRIPE_WEBHOOK_SECRET=whsec_{a:32}"],
            negative: &["whsec_{a:10}"],
        },
    },
    Detector {
        id: "square-access-token",
        description: "Square access token",
        keywords: &["EAAA", "sq0atp-"],
        pattern: r"(?m)(?:^|[^A-Za-z0-9+/_-])(?P<v>EAAA[A-Za-z0-9_-]{60}|sq0atp-[A-Za-z0-9_-]{22})(?:[^A-Za-z0-9+/=_-]|$)",
        filters: &[Classes(3), NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["SQUARE_ACCESS_TOKEN=EAAA{u:60}", "token: sq0atp-{u:22}"],
            negative: &["data = \"{b:30}EAAA{u:60}\"", "EAAA{u:20}"],
        },
    },
    Detector {
        id: "square-oauth-secret",
        description: "Square OAuth application secret",
        keywords: &["sq0csp-"],
        pattern: r"(?m)(?P<v>sq0csp-[A-Za-z0-9_-]{43})(?:[^A-Za-z0-9_-]|$)",
        filters: &[NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["SQUARE_APP_SECRET=sq0csp-{u:43}"],
            negative: &["sq0csp-{u:10}"],
        },
    },
    Detector {
        id: "braintree-access-token",
        description: "PayPal Braintree production access token",
        keywords: &["access_token$production$"],
        pattern: r"(?P<v>access_token\$production\$[a-z0-9]{16}\$[a-f0-9]{32})",
        filters: &[NotPlaceholder, Entropy(3.5)],
        window: Window::Line,
        examples: Examples {
            positive: &["BT_TOKEN=access_token$production${l:16}${h:32}"],
            negative: &["access_token$production$<merchant>$<token>"],
        },
    },
    Detector {
        id: "paypal-client-secret",
        description: "PayPal REST API client secret",
        keywords: &["paypal"],
        pattern: assigned!(r"paypal[\w.-]{0,30}secret", r"[A-Za-z0-9_-]{80}"),
        filters: &[Classes(3), NotPlaceholder, Entropy(4.2)],
        window: Window::Line,
        examples: Examples {
            positive: &["PAYPAL_CLIENT_SECRET={u:80}"],
            negative: &["PAYPAL_CLIENT_SECRET={u:20}"],
        },
    },
    Detector {
        id: "razorpay-key",
        description: "Razorpay live API key",
        keywords: &["rzp_live_"],
        pattern: r"\b(?P<v>rzp_live_[A-Za-z0-9]{14})\b",
        filters: &[NotPlaceholder, Entropy(3.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["RAZORPAY_KEY_ID=rzp_live_{a:14}"],
            negative: &["rzp_live_{a:5}"],
        },
    },
    Detector {
        id: "shopify-access-token",
        description: "Shopify access token (admin, custom app, partner)",
        keywords: &["shpat_", "shpca_", "shppa_"],
        pattern: r"\b(?P<v>shp(?:at|ca|pa)_[a-fA-F0-9]{32})\b",
        filters: &[NotPlaceholder, Entropy(3.2)],
        window: Window::Line,
        examples: Examples {
            positive: &["SHOPIFY_ACCESS_TOKEN=shpat_{h:32}"],
            negative: &["shpat_{h:16}"],
        },
    },
    Detector {
        id: "shopify-shared-secret",
        description: "Shopify app shared secret",
        keywords: &["shpss_"],
        pattern: r"\b(?P<v>shpss_[a-fA-F0-9]{32})\b",
        filters: &[NotPlaceholder, Entropy(3.2)],
        window: Window::Line,
        examples: Examples {
            positive: &["SHOPIFY_SECRET=shpss_{h:32}"],
            negative: &["shpss_{h:16}"],
        },
    },
    Detector {
        id: "flutterwave-secret-key",
        description: "Flutterwave secret key",
        keywords: &["FLWSECK"],
        pattern: r"(?P<v>FLWSECK(?:_TEST)?-[a-h0-9]{32}-X)",
        filters: &[NotPlaceholder, Entropy(3.2)],
        window: Window::Line,
        examples: Examples {
            positive: &["FLW_SECRET_KEY=FLWSECK-{h:32}-X"],
            negative: &["FLWSECK-{h:8}-X"],
        },
    },
    Detector {
        id: "plaid-secret",
        description: "Plaid API secret",
        keywords: &["plaid"],
        pattern: assigned!(r"plaid[\w.-]{0,20}secret", r"[a-f0-9]{30}"),
        filters: &[NotPlaceholder, Entropy(3.2)],
        window: Window::Line,
        examples: Examples {
            positive: &["PLAID_SECRET={h:30}"],
            negative: &["PLAID_SECRET={h:12}"],
        },
    },
];
