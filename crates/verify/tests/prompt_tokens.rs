//! Prompts of an exact token length with the default model's tokenizer, counted the way the
//! server counts them (BOS included), short and far beyond the model's context.

use ms_engine::generate::encode_prompt;
use ms_engine::tokenizer::Tokenizer;
use ms_verify::prompt::Counter;

#[test]
fn exact_prompt_lengths_with_the_model_tokenizer() {
    let path = ms_fetch::default_model().expect("default model");
    let file = ms_gguf::GgufFile::open(&path).expect("gguf");
    let tok = Tokenizer::from_gguf(&file).expect("tokenizer");
    let check = Tokenizer::from_gguf(&file).expect("tokenizer");
    let counter = Counter::Exact(Box::new(tok));
    for n in [2usize, 16, 127, 1000, 40_000] {
        let p = counter.prompt(n);
        let ids = encode_prompt(&check, &p.text, true).expect("encode");
        assert_eq!(p.tokens, n, "asked for {n}");
        assert_eq!(ids.len(), n, "the text really is {n} tokens");
    }
}
