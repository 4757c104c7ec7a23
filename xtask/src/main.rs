//! `cargo xtask …`: the project's chores, in Rust.
//!
//! - `gen`: synthetic Smart-seq2-like counts to an h5ad file (any size, bounded memory);
//! - `reference`: regenerate tests/data inputs and scanpy's expected outputs, one command;
//! - `bench`: atlasflow and scanpy side by side on generated files → BENCHMARKS.md;
//! - `bench-graph`: neighbors + UMAP + Leiden side by side on the same PCs;
//! - `fuzz`: the cargo-fuzz targets for a while each; crashes become corpus cases.

mod bench;
mod bench_graph;
mod fuzz;
#[path = "gen.rs"]
mod generate; // `gen` is a reserved keyword in edition 2024
mod reference;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "atlasflow development tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate synthetic Smart-seq2-like counts (h5ad).
    Gen(generate::GenArgs),
    /// Regenerate tests/data/*/input.h5ad and expected.h5 (runs scanpy).
    Reference(reference::RefArgs),
    /// Benchmark atlasflow against scanpy on generated files; writes BENCHMARKS.md.
    Bench(bench::BenchArgs),
    /// Benchmark neighbors + UMAP + Leiden against scanpy on the same PCs.
    BenchGraph(bench_graph::GraphArgs),
    /// Fuzz the YAML spec parser, the h5ad reader and the atlas store reader (cargo fuzz).
    Fuzz(fuzz::FuzzArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let r = match &cli.cmd {
        Cmd::Gen(a) => generate::run(a),
        Cmd::Reference(a) => reference::main(a),
        Cmd::Bench(a) => bench::main(a),
        Cmd::BenchGraph(a) => bench_graph::main(a),
        Cmd::Fuzz(a) => fuzz::main(a),
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
