//! A small deterministic mutation loop for the test suite: the same seed always tries the
//! same inputs, so a smoke run that passes today passes tomorrow unless the code changed,
//! and one that fails names an input file that reproduces it.
//!
//! It is no substitute for libFuzzer (no coverage feedback); it catches the shallow panics
//! a byte flip or a truncation finds, on every `cargo test`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// SplitMix64: a fixed, tiny generator, so a seed means the same inputs on every platform
/// and every release; hand-written because the rand crate's features would unify with the
/// engine's dependencies and rebuild them for this crate's builds.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0; the modulo bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn byte(&mut self) -> u8 {
        (self.next_u64() >> 56) as u8
    }

    fn coin(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }
}

/// Byte strings worth writing over an input: boundary integers (little- and big-endian), and
/// tokens that change the structure of YAML text or an HDF5/Parquet header.
const INTERESTING: &[&[u8]] = &[
    &[0],
    &[0xff],
    &[0x7f],
    &[0x80],
    &[0, 0],
    &[0xff, 0xff],
    &[0xff, 0xff, 0xff, 0x7f],
    &[0x7f, 0xff, 0xff, 0xff],
    &[0, 0, 0, 0x80],
    &[0xff, 0xff, 0xff, 0xff],
    &[0, 0, 0, 0],
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
    &[0, 0, 0, 0, 0, 0, 0, 0x80],
    &[0xff; 8],
    &[1, 0, 0, 0, 0, 0, 0, 0],
    b"\n",
    b": ",
    b"- ",
    b"[",
    b"{",
    b"'",
    b"\"",
    b"&a ",
    b"*a",
    b"!!str ",
    b"null",
    b"~",
    b"-1",
    b"1e999",
    b".nan",
    b"0x7fffffffffffffff",
    b"99999999999999999999",
    b"\t",
    b"#set ",
    b" and ",
    b" in [",
];

/// What a smoke run did.
#[derive(Clone, Debug, Default)]
pub struct SmokeStats {
    /// Inputs run (mutants only; the seeds are replayed separately).
    pub executions: usize,
    /// Time spent.
    pub elapsed: Duration,
}

/// Where a failing input is written: `$ATLASFLOW_FUZZ_OUT`, else
/// `<temp>/atlasflow-fuzz-smoke`.
fn failure_dir() -> PathBuf {
    std::env::var_os("ATLASFLOW_FUZZ_OUT").map_or_else(|| std::env::temp_dir().join("atlasflow-fuzz-smoke"), PathBuf::from)
}

/// FNV-1a, to name a failing input by its content.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Run `target` on `iterations` inputs made from `seeds` by 1–4 stacked mutations each (bit
/// flips, random bytes, inserts, deletes, duplicated and spliced chunks, boundary values and
/// structural tokens), chosen by a SplitMix64 generator seeded with `seed`. Each run is wrapped in
/// `catch_unwind`; the first panic writes the input to a file (see [`failure_dir`]: the
/// `ATLASFLOW_FUZZ_OUT` variable, else the temp directory) and returns an error naming the
/// file and the panic message. Empty `seeds` means starting from the empty input.
pub fn smoke(target: fn(&[u8]), seeds: &[Vec<u8>], iterations: usize, seed: u64) -> Result<SmokeStats, String> {
    smoke_in(&failure_dir(), target, seeds, iterations, seed)
}

/// As [`smoke`], writing a failing input into `dir`.
pub fn smoke_in(dir: &Path, target: fn(&[u8]), seeds: &[Vec<u8>], iterations: usize, seed: u64) -> Result<SmokeStats, String> {
    let started = Instant::now();
    for input in Mutants::new(seeds, seed).take(iterations) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| target(&input))) {
            let file = dir.join(format!("crash-{:016x}", fnv(&input)));
            let saved = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&file, &input));
            let place = match saved {
                Ok(()) => format!("input saved to {}", file.display()),
                Err(e) => format!("the input could not be saved to {}: {e}", file.display()),
            };
            return Err(format!("panic: {}; {place}", atlasflow_core::contain::panic_message(payload.as_ref())));
        }
    }
    Ok(SmokeStats { executions: iterations, elapsed: started.elapsed() })
}

/// The endless, deterministic stream of inputs [`smoke`] runs: each a seed picked at random
/// with 1–4 stacked mutations. For running the inputs some other way (one process each, to
/// survive a hang or crash in C code).
pub struct Mutants<'a> {
    rng: Rng,
    seeds: &'a [Vec<u8>],
    max_len: usize,
}

const EMPTY: &[Vec<u8>] = &[Vec::new()];

impl<'a> Mutants<'a> {
    /// Mutants of `seeds` (the empty input when there is none) from the generator seeded
    /// with `seed`.
    pub fn new(seeds: &'a [Vec<u8>], seed: u64) -> Self {
        let seeds = if seeds.is_empty() { EMPTY } else { seeds };
        let max_len = seeds.iter().map(Vec::len).max().unwrap_or(0) * 2 + 64;
        Mutants { rng: Rng::new(seed), seeds, max_len }
    }
}

impl Iterator for Mutants<'_> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        let mut input = self.seeds[self.rng.below(self.seeds.len())].clone();
        for _ in 0..self.rng.between(1, 4) {
            mutate(&mut self.rng, &mut input, self.seeds, self.max_len);
        }
        Some(input)
    }
}

/// Apply one random mutation to `input`, keeping it at most `max_len` bytes.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>], max_len: usize) {
    let len = input.len();
    let pos = |rng: &mut Rng, n: usize| if n == 0 { 0 } else { rng.below(n) };
    match rng.below(9) {
        // Flip one bit.
        0 if len > 0 => {
            let i = pos(rng, len);
            input[i] ^= 1 << rng.below(8);
        }
        // Overwrite one byte.
        1 if len > 0 => {
            let i = pos(rng, len);
            input[i] = rng.byte();
        }
        // Insert 1–8 random bytes.
        2 => {
            let i = pos(rng, len + 1);
            let n = rng.between(1, 8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
            input.splice(i..i, bytes);
        }
        // Delete a run of 1–32 bytes.
        3 if len > 0 => {
            let i = pos(rng, len);
            let n = rng.between(1, 32).min(len - i);
            input.drain(i..i + n);
        }
        // Truncate.
        4 if len > 0 => input.truncate(pos(rng, len)),
        // Overwrite with a boundary value or token.
        5 | 6 => {
            let tok = INTERESTING[rng.below(INTERESTING.len())];
            let i = pos(rng, len + 1);
            if rng.coin() {
                input.splice(i..i, tok.iter().copied());
            } else {
                let end = (i + tok.len()).min(len);
                input.splice(i..end, tok.iter().copied());
            }
        }
        // Duplicate a chunk of the input elsewhere in it.
        7 if len > 0 => {
            let a = pos(rng, len);
            let n = rng.between(1, 64).min(len - a);
            let chunk = input[a..a + n].to_vec();
            let i = pos(rng, len + 1);
            input.splice(i..i, chunk);
        }
        // Splice in a chunk of another seed.
        _ => {
            let other = &seeds[rng.below(seeds.len())];
            if !other.is_empty() {
                let a = pos(rng, other.len());
                let n = rng.between(1, 64).min(other.len() - a);
                let i = pos(rng, len + 1);
                let end = if rng.coin() { i } else { (i + n).min(len) };
                input.splice(i..end, other[a..a + n].iter().copied());
            }
        }
    }
    input.truncate(max_len);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never(_: &[u8]) {}

    fn panics_on_x(data: &[u8]) {
        assert!(!data.contains(&b'x'), "found an x");
    }

    #[test]
    fn same_seed_same_inputs() {
        let seeds = vec![b"hello world".to_vec()];
        let run = |s| {
            let mut rng = Rng::new(s);
            let mut v = seeds[0].clone();
            for _ in 0..50 {
                mutate(&mut rng, &mut v, &seeds, 100);
            }
            v
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        assert!(smoke(never, &seeds, 200, 1).is_ok());
    }

    #[test]
    fn a_panic_fails_and_saves_the_input() {
        let dir = tempfile::tempdir().expect("tmp");
        let e = smoke_in(dir.path(), panics_on_x, &[b"abc".to_vec(), b"xyz".to_vec()], 1000, 3).expect_err("must fail");
        assert!(e.contains("found an x") && e.contains("crash-"), "{e}");
        let saved: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
        assert_eq!(saved.len(), 1);
    }
}
