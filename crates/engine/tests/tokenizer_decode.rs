//! Decoding: round trips through real vocabularies, control tokens, bad ids, and streaming
//! decode of characters split across byte tokens.

use std::path::Path;

use ms_engine::tokenizer::{StreamDecoder, Tokenizer, TokenizerError, TokenizerKind};
use ms_gguf::GgufFile;
use ms_test_support::oracle_model;

fn load(path: &Path) -> Tokenizer {
    let file = GgufFile::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Tokenizer::from_gguf(&file).unwrap_or_else(|e| panic!("{e}"))
}

fn llama_spm() -> Tokenizer {
    load(&oracle_model("llama-spm-tiny.q8_0"))
}

fn qwen2_bpe() -> Tokenizer {
    load(&oracle_model("qwen2-bpe-tiny.q8_0"))
}

fn gemma() -> Tokenizer {
    load(&ms_fetch::default_model().unwrap_or_else(|e| panic!("default model: {e}")))
}

const TEXTS: &[&str] = &[
    "Hello world",
    " Hello  world ",
    "naïve café — “quotes” 日本語のテキストです。",
    "emoji: 🙂🚀👩\u{200d}💻 and 🦙",
    "def f(x):\n    return x ** 2\n\n",
    "\u{a0}non-breaking\u{a0}space\t\ttabs",
    "Ǆ\u{0301}𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ꙮ",
];

/// Decodes `ids` one at a time; returns the chunks (the last one from `finish`).
fn stream(tok: &Tokenizer, ids: &[u32]) -> Vec<String> {
    let mut d = StreamDecoder::new(tok);
    let mut chunks: Vec<String> = ids.iter().map(|&id| d.push(id).unwrap()).collect();
    chunks.push(d.finish());
    chunks
}

fn check_round_trips(tok: &Tokenizer) {
    for text in TEXTS {
        let ids = tok.encode(text, true, false);
        assert_eq!(tok.decode(&ids).unwrap(), *text, "ids {ids:?}");
        let chunks = stream(tok, &ids);
        assert_eq!(chunks.concat(), *text);
        assert_eq!(
            chunks.last().map(String::as_str),
            Some(""),
            "nothing left over"
        );
    }
}

#[test]
fn round_trips_llama_spm() {
    check_round_trips(&llama_spm());
}

#[test]
fn round_trips_qwen2_bpe() {
    check_round_trips(&qwen2_bpe());
}

#[test]
fn round_trips_gemma3() {
    check_round_trips(&gemma());
}

/// Byte-fallback tokens spell a character over several tokens: nothing is emitted before the
/// character is complete.
#[test]
fn streaming_holds_characters_split_across_byte_tokens() {
    let tok = llama_spm();
    let text = "a🙂日b";
    let byte = |b: u8| tok.token_id(&format!("<0x{b:02X}>")).unwrap();
    let mut ids = vec![tok.token_id("a").unwrap()];
    ids.extend("🙂日".bytes().map(byte));
    ids.push(tok.token_id("b").unwrap());
    let chunks = stream(&tok, &ids);
    assert_eq!(
        chunks,
        ["a", "", "", "", "🙂", "", "", "日", "b", ""],
        "one chunk per token, then finish"
    );
    assert_eq!(tok.decode(&ids).unwrap(), text);

    // The same through the real tokenizer: the encoding of rare characters uses byte tokens.
    let ids = tok.encode("日本語のテキストです。🦙", false, false);
    let chunks = stream(&tok, &ids);
    assert!(
        chunks.iter().any(String::is_empty),
        "some character was split: {ids:?}"
    );
    assert_eq!(chunks.concat(), " 日本語のテキストです。🦙");
}

#[test]
fn streaming_byte_level_bpe_splits() {
    let tok = qwen2_bpe();
    let text = "日本語のテキストです。👩\u{200d}💻";
    let ids = tok.encode(text, false, false);
    let chunks = stream(&tok, &ids);
    assert!(
        chunks.iter().any(String::is_empty),
        "some character was split: {ids:?}"
    );
    assert_eq!(chunks.concat(), text);
}

#[test]
fn streaming_replaces_invalid_and_unfinished_sequences() {
    let tok = llama_spm();
    let byte = |b: u8| tok.token_id(&format!("<0x{b:02X}>")).unwrap();
    let a = tok.token_id("a").unwrap();
    // A lead byte followed by a non-continuation: replaced as soon as it is known invalid.
    assert_eq!(stream(&tok, &[byte(0xF0), a]), ["", "\u{FFFD}a", ""]);
    // A stray continuation byte.
    assert_eq!(stream(&tok, &[byte(0x80), a]), ["\u{FFFD}", "a", ""]);
    // An unfinished character at the end.
    assert_eq!(
        stream(&tok, &[a, byte(0xE6), byte(0x97)]),
        ["a", "", "", "\u{FFFD}"]
    );
    assert_eq!(
        tok.decode(&[a, byte(0xE6), byte(0x97)]).unwrap(),
        "a\u{FFFD}"
    );
}

#[test]
fn leading_space_is_stripped_only_after_a_leading_bos() {
    let tok = llama_spm();
    let bos = tok.bos().unwrap();
    let hello = tok.token_id("▁Hello").unwrap();
    assert_eq!(tok.decode(&[bos, hello, hello]).unwrap(), "Hello Hello");
    // Generated text continues the prompt: its first space is part of it.
    assert_eq!(tok.decode(&[hello, hello]).unwrap(), " Hello Hello");
    // Gemma does not prefix a space, so nothing is stripped.
    let g = gemma();
    let ids = g.encode(" leading", true, false);
    assert_eq!(ids[0], g.bos().unwrap());
    assert_eq!(g.decode(&ids).unwrap(), " leading");
}

#[test]
fn control_tokens_are_hidden_in_text_but_have_pieces() {
    let g = gemma();
    let ids = g.encode("<start_of_turn>user\nhi<end_of_turn>", true, true);
    let sot = g.token_id("<start_of_turn>").unwrap();
    let eot = g.token_id("<end_of_turn>").unwrap();
    assert_eq!(ids.first(), g.bos().as_ref());
    assert!(ids.contains(&sot) && ids.last() == Some(&eot));
    assert_eq!(g.decode(&ids).unwrap(), "user\nhi");
    assert_eq!(g.token_to_piece(sot).unwrap(), b"<start_of_turn>");
    assert!(g.is_eog(eot));
    // Without parse_special the markup is plain text and decodes back to itself.
    let plain = g.encode("<start_of_turn>user", false, false);
    assert!(!plain.contains(&sot));
    assert_eq!(g.decode(&plain).unwrap(), "<start_of_turn>user");
}

#[test]
fn out_of_range_ids_are_errors() {
    for tok in [llama_spm(), qwen2_bpe()] {
        let n = tok.vocab_size() as u32;
        let err = tok.decode(&[1, n]).unwrap_err();
        assert!(matches!(err, TokenizerError::IdOutOfRange { id, .. } if id == n));
        assert!(err.to_string().contains(&n.to_string()));
        assert!(tok.token_to_piece(u32::MAX).is_err());
        assert!(StreamDecoder::new(&tok).push(n + 7).is_err());
    }
}

#[test]
fn empty_text() {
    let tok = llama_spm();
    assert!(tok.encode("", false, true).is_empty());
    assert_eq!(tok.encode("", true, true), vec![tok.bos().unwrap()]);
    let q = qwen2_bpe();
    assert!(
        q.encode("", true, true).is_empty(),
        "qwen2-tiny adds no BOS"
    );
    assert_eq!(tok.decode(&[]).unwrap(), "");
}

/// A GGUF file whose tokenizer metadata is missing or broken: the error names the file and
/// the key.
#[test]
fn files_with_missing_or_malformed_tokenizers() {
    use ms_gguf::{Array, Value};
    use ms_test_support::TinyGguf;
    let src = GgufFile::open(oracle_model("llama-spm-tiny.q8_0")).unwrap();
    let dir = std::env::temp_dir().join(format!("ms-tokenizer-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    type Edit = fn(&mut ms_gguf::Metadata);
    let cases: [(&str, Edit, &str); 3] = [
        (
            "no-tokenizer.gguf",
            |m| {
                m.remove("tokenizer.ggml.model");
            },
            "tokenizer.ggml.model",
        ),
        (
            "no-tokens.gguf",
            |m| {
                m.remove("tokenizer.ggml.tokens");
            },
            "tokenizer.ggml.tokens",
        ),
        (
            "bad-types.gguf",
            |m| {
                m.insert(
                    "tokenizer.ggml.token_type",
                    Value::Array(Array::I32(vec![1; 3])),
                )
            },
            "tokenizer.ggml.token_type",
        ),
    ];
    for (name, edit, key) in cases {
        let mut meta = src.metadata().clone();
        edit(&mut meta);
        let path = TinyGguf::with_metadata(meta).write(dir.join(name));
        let file = GgufFile::open(&path).unwrap();
        let err = Tokenizer::from_gguf(&file).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains(key), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Pseudo-random texts (fixed seed) mixing scripts, whitespace, digits, emoji and markup:
/// encoding never panics, and decoding gives the text back, streamed or not.
#[test]
fn random_texts_round_trip() {
    const POOL: &[&str] = &[
        "a",
        "Z",
        "é",
        "ß",
        " ",
        "  ",
        "\t",
        "\n",
        "\r\n",
        "\u{a0}",
        "\u{3000}",
        "0",
        "42",
        "٣",
        "'s",
        "'LL",
        ".",
        "!!",
        "—",
        "日",
        "本",
        "語",
        "ж",
        "🙂",
        "👩\u{200d}💻",
        "\u{301}",
        "<",
        ">",
        "<s>",
        "</s>",
        "<unk>",
        "<start_of_turn>",
        "<|endoftext|>",
        "<table>",
        "▁",
        "Ġ",
        "\u{0}",
        "\u{7f}",
        "\u{10ffff}",
        "\u{fffd}",
    ];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let texts: Vec<String> = (0..300)
        .map(|_| {
            let n = next() % 16;
            (0..n)
                .map(|_| POOL[(next() % POOL.len() as u64) as usize])
                .collect()
        })
        .collect();
    for tok in [llama_spm(), qwen2_bpe(), gemma()] {
        for text in &texts {
            let ids = tok.encode(text, true, false);
            // SentencePiece spells spaces `▁`, so a `▁` in the text comes back as a space.
            let want = match tok.kind() {
                TokenizerKind::Spm => text.replace('▁', " "),
                TokenizerKind::Bpe(_) => text.clone(),
            };
            assert_eq!(tok.decode(&ids).unwrap(), want, "{:?} {ids:?}", tok.kind());
            assert_eq!(stream(&tok, &ids).concat(), want);
            // Parsing special tokens changes ids, never panics, and decodes without them.
            let special = tok.encode(text, true, true);
            assert!(special.iter().all(|&id| (id as usize) < tok.vocab_size()));
            tok.decode(&special).unwrap();
        }
    }
}
