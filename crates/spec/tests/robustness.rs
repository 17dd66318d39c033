//! Arbitrary input never panics: random YAML-like text and random edits of a real example go
//! through parsing, schema validation, rules and upgrade, and come back as findings.

use ms_spec::{Checker, Source, upgrade};
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../../../examples/08-full-production.modelspec.yaml");
const ALPHA: &str = include_str!("../../../examples/v1alpha1/04-scaling.modelspec.yaml");

fn run(name: &str, text: &str) {
    let src = Source::from_text(name, text);
    let _ = Checker::default().check(&src);
    // Refusing bad input is fine; an upgrade that fails its own round-trip check is a bug.
    if let Err(diags) = upgrade::upgrade_source(&src) {
        assert!(
            !diags
                .iter()
                .any(|d| d.message.starts_with("internal error")),
            "{text:?}: {diags:?}"
        );
    }
}

/// The v1 example as pretty JSON, for edits of a `.json` file.
fn example_json() -> String {
    let parsed = ms_spec::yaml::parse(&Source::from_text("e.yaml", EXAMPLE));
    serde_json::to_string_pretty(&parsed.documents[0].root.to_json()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn yaml_like_noise(text in "[ \\n\\t:{}\\[\\],&*!?|>'\"#%@`a-z0-9.-]{0,200}") {
        run("n.yaml", &text);
        run("n.json", &text);
    }

    #[test]
    fn edits_of_real_specs(cut in 0usize..4000, len in 0usize..40, insert in "[ \\n:{}\\[\\],&*!|>'\"#-]{0,5}", alpha in any::<bool>()) {
        let base = if alpha { ALPHA } else { EXAMPLE };
        let mut text: Vec<char> = base.chars().collect();
        let at = cut.min(text.len());
        let end = (at + len).min(text.len());
        text.splice(at..end, insert.chars());
        run("e.yaml", &text.into_iter().collect::<String>());
    }

    #[test]
    fn edits_of_json_specs(cut in 0usize..6000, len in 0usize..40, insert in r#"[ \n\t:{}\[\],\\"/#a-zé0-9.eE+-]{0,6}"#) {
        let mut text: Vec<char> = example_json().chars().collect();
        let at = cut.min(text.len());
        let end = (at + len).min(text.len());
        text.splice(at..end, insert.chars());
        run("e.json", &text.into_iter().collect::<String>());
    }
}
