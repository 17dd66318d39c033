//! Chat templates: built-in formats, a real-style Jinja template, and the sandbox's limits.

use std::time::{Duration, Instant};

use ms_engine::chat::{ChatError, ChatFormat, ChatMessage, ChatTemplate, TemplateLimits};

/// The shape of Gemma 3's Hugging Face template (system prompt folded into the first user turn,
/// alternation check, `model` role).
const GEMMA3_STYLE: &str = r#"{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {{- message['content'] | trim }}
    {{- '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"#;

fn convo() -> Vec<ChatMessage> {
    vec![
        ChatMessage::new("system", "Be brief."),
        ChatMessage::new("user", "Hi!"),
        ChatMessage::new("assistant", "Hello."),
        ChatMessage::new("user", " What is 2+2? "),
    ]
}

fn template(src: &str) -> ChatTemplate {
    ChatTemplate::new(ChatFormat::Template(src.into()), "<bos>", "<eos>")
}

#[test]
fn gemma_fallback_matches_the_gemma_template() {
    let want = "<start_of_turn>user\nBe brief.\n\nHi!<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n\
                <start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n";
    let builtin = ChatTemplate::new(ChatFormat::Gemma, "<bos>", "<eos>");
    assert_eq!(builtin.render(&convo(), true).unwrap(), want);
    // The Jinja template writes the BOS text itself; the tokenizer adds it for the built-in.
    assert_eq!(
        template(GEMMA3_STYLE).render(&convo(), true).unwrap(),
        format!("<bos>{want}")
    );
    let no_gen = builtin.render(&convo()[..3], false).unwrap();
    assert!(no_gen.ends_with("Hello.<end_of_turn>\n"), "{no_gen}");
}

#[test]
fn template_exceptions_are_reported() {
    let bad = vec![ChatMessage::new("user", "a"), ChatMessage::new("user", "b")];
    let err = template(GEMMA3_STYLE).render(&bad, true).unwrap_err();
    assert!(
        matches!(err, ChatError::Raised(ref m) if m.contains("must alternate")),
        "{err}"
    );
}

#[test]
fn other_builtin_formats() {
    let msgs = vec![
        ChatMessage::new("system", "S"),
        ChatMessage::new("user", "U"),
    ];
    let chatml = ChatTemplate::new(ChatFormat::ChatMl, "", "<|endoftext|>")
        .render(&msgs, true)
        .unwrap();
    assert_eq!(
        chatml,
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    );
    let llama2 = ChatTemplate::new(ChatFormat::Llama2, "<s>", "</s>")
        .render(&msgs, true)
        .unwrap();
    assert_eq!(llama2, "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST]");
    let llama3 = ChatTemplate::new(ChatFormat::Llama3, "<|begin_of_text|>", "")
        .render(&msgs, true)
        .unwrap();
    assert_eq!(
        llama3,
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>\
         <|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    let plain = ChatTemplate::new(ChatFormat::Plain, "", "");
    assert_eq!(
        plain.render(&msgs, true).unwrap(),
        "system: S\nuser: U\nassistant:"
    );
    assert_eq!(plain.stop_strings(), ["\nuser:"]);
    assert!(
        ChatTemplate::new(ChatFormat::Gemma, "", "")
            .stop_strings()
            .is_empty()
    );
}

#[test]
fn fallback_is_chosen_by_architecture_and_vocabulary() {
    let none = |_: &str| false;
    assert_eq!(ChatFormat::fallback("gemma3", none), ChatFormat::Gemma);
    assert_eq!(ChatFormat::fallback("qwen2", none), ChatFormat::ChatMl);
    assert_eq!(ChatFormat::fallback("llama", none), ChatFormat::Llama2);
    assert_eq!(
        ChatFormat::fallback("llama", |t| t == "<|start_header_id|>"),
        ChatFormat::Llama3
    );
    assert_eq!(ChatFormat::fallback("phi3", none), ChatFormat::Plain);
    assert_eq!(ChatFormat::from_name("ChatML"), Some(ChatFormat::ChatMl));
    assert_eq!(ChatFormat::from_name("nope"), None);
}

#[test]
fn python_string_methods_and_tojson_work() {
    let t = template(
        "{% for m in messages %}{{ m.role.upper() }}={{ m.content.strip() }}{% if m.content.startswith(' W') %}!{% endif %};{% endfor %}{{ messages[0] | tojson }}",
    );
    let out = t
        .render(&[ChatMessage::new("user", " What ")], false)
        .unwrap();
    // Python json.dumps separators, as transformers renders them.
    assert_eq!(out, r#"USER=What!;{"content": " What ", "role": "user"}"#);
}

#[test]
fn json_messages_and_extra_variables_reach_the_template() {
    let t =
        template("{{ tools[0].name }}|{% for m in messages %}{{ m.content[0].text }}{% endfor %}");
    let messages =
        serde_json::json!([{"role": "user", "content": [{"type": "text", "text": "hey"}]}]);
    let extra = serde_json::json!({"tools": [{"name": "search"}]});
    let out = t.render_json(&messages, true, extra.as_object()).unwrap();
    assert_eq!(out, "search|hey");
    // Built-in formats take the text parts of such content.
    let gemma = ChatTemplate::new(ChatFormat::Gemma, "", "");
    assert_eq!(
        gemma.render_json(&messages, false, None).unwrap(),
        "<start_of_turn>user\nhey<end_of_turn>\n"
    );
}

#[test]
fn a_template_that_loops_forever_runs_out_of_fuel() {
    let t = template(
        "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}{% endfor %}{% endfor %}{% endfor %}",
    );
    let start = Instant::now();
    let err = t.render(&convo(), true).unwrap_err();
    assert!(matches!(err, ChatError::OutOfFuel(_)), "{err}");
    assert!(err.to_string().contains("--chat-format"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn recursion_is_bounded() {
    let t = template("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
    let err = t.render(&convo(), true).unwrap_err();
    assert!(
        matches!(err, ChatError::Render(_) | ChatError::OutOfFuel(_)),
        "{err}"
    );
}

#[test]
fn a_huge_output_is_refused() {
    let t = template("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}");
    let err = t.render(&convo(), true).unwrap_err();
    assert!(
        matches!(err, ChatError::TooLarge(n) if n == TemplateLimits::default().max_output_bytes),
        "{err}"
    );
}

#[test]
fn a_slow_template_is_abandoned_after_the_time_limit() {
    let mut t = template("{% for i in range(100000) %}{{ ('y' * 1000000) | length }}{% endfor %}");
    t.limits = TemplateLimits {
        max_time: Duration::from_millis(200),
        ..TemplateLimits::default()
    };
    let start = Instant::now();
    let err = t.render(&convo(), true).unwrap_err();
    assert!(matches!(err, ChatError::Timeout(_)), "{err}");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn templates_cannot_include_files() {
    for src in [
        "{% include '/etc/passwd' %}",
        "{% import 'macros.j2' as m %}",
        "{% extends 'base.html' %}",
    ] {
        let err = template(src).render(&convo(), true).unwrap_err();
        assert!(matches!(err, ChatError::Include(_)), "{src}: {err}");
    }
}

#[test]
fn syntax_errors_and_empty_conversations_are_clear() {
    let err = template("{% for m in messages %}")
        .render(&convo(), true)
        .unwrap_err();
    assert!(matches!(err, ChatError::Syntax(_)), "{err}");
    let err = ChatTemplate::new(ChatFormat::Gemma, "", "")
        .render(&[], true)
        .unwrap_err();
    assert!(matches!(err, ChatError::NoMessages), "{err}");
}
