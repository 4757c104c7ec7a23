//! Measures how fast X streams band by band from a Census-shaped tree:
//! `cargo run --release -p atlasflow-soma --example x_throughput -- <census root>
//! [layer] [band rows|-] [every nth cell]`.
//!
//! Streams `census_data/homo_sapiens/ms/RNA/X/<layer>` (default `raw`) in obs order, one
//! band (default: the dim-0 tile extent) at a time, over every cell (and, when `every nth
//! cell` > 1, over a strided selection too), and prints cells/s, non-zeros/s and a value
//! checksum (compare with `scripts/soma_x_throughput.py` on the same tree).

use std::time::Instant;

/// The engine binary's allocator (crates/cli/src/main.rs), so the numbers are what the
/// engine will see: with glibc's malloc each band's large buffers come back as fresh
/// pages, and page faults took about a third of the time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use atlasflow_soma::census::RNA;
use atlasflow_soma::{Census, Coords};

/// CPU seconds this process used so far, all threads (Linux `/proc/self/stat`, in clock
/// ticks of 1/100 s); 0 elsewhere. The machine is shared, so CPU time says more about
/// the reader than wall time does.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the ")" closing the command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = args
        .next()
        .ok_or("usage: x_throughput <census root> [layer] [band rows] [every nth cell]")?;
    let layer = args.next().unwrap_or_else(|| "raw".into());
    // "-" (or nothing) keeps the default band: the dim-0 tile extent.
    let band: Option<i64> = args
        .next()
        .filter(|s| !s.is_empty() && s != "-")
        .map(|s| s.parse())
        .transpose()?;
    let stride: i64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);

    let start = Instant::now();
    let census = Census::open_local(&root)?;
    let array = census.experiment("Homo sapiens")?.x(RNA, &layer)?;
    let x = array.x_reader()?;
    let n_obs = array.shape().first().copied().flatten().unwrap_or(0) as i64;
    println!(
        "open: {:.3} s ({} fragments, shape {:?}, band {} rows, rayon threads {})",
        start.elapsed().as_secs_f64(),
        array.tiledb().fragments().len(),
        array.shape(),
        band.unwrap_or_else(|| x.default_band_rows()),
        rayon::current_num_threads()
    );
    let mut runs = vec![("all cells".to_string(), Coords::all())];
    if stride > 1 {
        runs.push((
            format!("every {stride}th cell"),
            Coords::points((0..n_obs).step_by(stride as usize)),
        ));
    }
    for (what, cells) in runs {
        let start = Instant::now();
        let cpu = cpu_seconds();
        let (mut rows, mut nnz, mut bands, mut tiles, mut max_cells) =
            (0u64, 0u64, 0u64, 0u64, 0u64);
        let mut checksum = 0f64;
        for csr in x.bands(cells, band) {
            let csr = csr?;
            rows += csr.n_rows() as u64;
            nnz += csr.nnz() as u64;
            bands += 1;
            tiles += csr.stats.tiles;
            max_cells = max_cells.max(csr.stats.cells);
            checksum += csr.values.iter().map(|&v| f64::from(v)).sum::<f64>();
        }
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu;
        println!(
            "{what}: {rows} cells, {nnz} non-zeros, {bands} bands, {tiles} tiles decoded \
             (at most {max_cells} cells decoded per band) in {secs:.3} s wall, {cpu:.2} s CPU: \
             {:.0} cells/s, {:.0} nnz/s (per CPU second: {:.0} cells, {:.0} nnz), \
             checksum {checksum:.1}",
            rows as f64 / secs,
            nnz as f64 / secs,
            rows as f64 / cpu.max(0.01),
            nnz as f64 / cpu.max(0.01)
        );
    }
    Ok(())
}
