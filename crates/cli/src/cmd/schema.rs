//! `modelspec schema`: print the JSON Schema generated from the typed documents.

use std::process::ExitCode;

use clap::ValueEnum;
use ms_spec::schema::{self, DocType, Draft};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Api {
    /// modelspec/v1 ModelSpec (ours).
    V1,
    /// piqc.ai/v1alpha1 ModelSpec (upstream).
    V1alpha1,
    /// modelspec/v1 ExecutionPlan.
    Plan,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DraftArg {
    #[value(name = "2020-12")]
    D2020_12,
    #[value(name = "07")]
    D07,
}

#[derive(clap::Args)]
pub struct Args {
    /// Which document type.
    #[arg(long, value_enum, default_value = "v1")]
    pub api: Api,
    /// JSON Schema draft (07 for editors that lag behind).
    #[arg(long, value_enum, default_value = "2020-12")]
    pub draft: DraftArg,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let doc = match args.api {
        Api::V1 => DocType::V1,
        Api::V1alpha1 => DocType::V1alpha1,
        Api::Plan => DocType::Plan,
    };
    let draft = match args.draft {
        DraftArg::D2020_12 => Draft::Draft2020_12,
        DraftArg::D07 => Draft::Draft07,
    };
    print!("{}", schema::render(doc, draft));
    Ok(ExitCode::SUCCESS)
}
