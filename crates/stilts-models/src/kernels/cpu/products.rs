//! Matrix products through `gemm` (the crate burn-flex multiplies with), into buffers allocated
//! here, and the column sums of a bias gradient.
//!
//! burn-flex allocates each product's output as zeroed bytes and then copies it into an aligned
//! buffer (two passes over the output before gemm writes it), and a linear layer's bias and
//! attention's scale are passes of their own after it. Here the output is written once: gemm
//! fills it, starting from the bias rows when there is a bias (as PyTorch's `addmm` does) and
//! scaling the product by `alpha` on the way.

use rayon::prelude::*;

use super::{LANES, rows_per_task};

/// Products this size (multiply-adds) or larger use every thread inside gemm; burn-flex's
/// threshold.
const PARALLEL_THRESHOLD: usize = 192 * 192 * 192;

/// Batches of smaller products with at least this much work run one product per thread.
const BATCH_PARALLEL_THRESHOLD: usize = 128 * 128 * 128;

/// One operand of a (batched) product: element `(i, j)` of batch `b` is
/// `data[offsets[b] + i * row_stride + j * col_stride]`.
#[derive(Debug, Clone, Copy)]
pub struct Operand<'a> {
    /// The storage the offsets index.
    pub data: &'a [f32],
    /// Where each batch's matrix starts.
    pub offsets: &'a [usize],
    /// Distance between rows, in elements (not negative).
    pub row_stride: usize,
    /// Distance between columns, in elements (not negative).
    pub col_stride: usize,
}

impl Operand<'_> {
    /// Panics unless every element of a `rows x cols` matrix at each offset lies in `data`:
    /// what makes the raw reads in [`matmul`] sound.
    fn check(&self, rows: usize, cols: usize, what: &str) {
        if rows == 0 || cols == 0 {
            return;
        }
        let last = (rows - 1) * self.row_stride + (cols - 1) * self.col_stride;
        for &offset in self.offsets {
            assert!(
                offset + last < self.data.len(),
                "matmul: {what} matrix at {offset} (+{last}) outside its {} elements",
                self.data.len()
            );
        }
    }
}

/// What the output holds before the product is added to it.
#[derive(Debug, Clone, Copy)]
pub enum Start<'a> {
    /// Nothing: the output is `alpha * lhs @ rhs`.
    Empty,
    /// A bias row `[n]` in every row: the output is `bias + alpha * lhs @ rhs`.
    Bias(&'a [f32]),
}

/// `start + alpha * lhs @ rhs` for every batch: `[batch, m, n]`, row-major, from `lhs`
/// `[batch, m, k]` and `rhs` `[batch, k, n]` (`lhs.offsets.len()` batches, the same count for
/// `rhs`).
///
/// Each output element is one dot product over `k` whatever the thread count (gemm splits rows
/// and columns among threads, never `k`), so results do not depend on it.
pub fn matmul(
    lhs: Operand,
    rhs: Operand,
    [m, k, n]: [usize; 3],
    alpha: f32,
    start: Start,
) -> Vec<f32> {
    let batch = lhs.offsets.len();
    assert_eq!(rhs.offsets.len(), batch, "matmul: batch counts");
    lhs.check(m, k, "lhs");
    rhs.check(k, n, "rhs");
    let size = m * n;
    let mut out = match start {
        Start::Empty if k > 0 => Vec::with_capacity(batch * size),
        Start::Empty => vec![0.0; batch * size],
        Start::Bias(bias) => {
            assert_eq!(
                bias.len(),
                n,
                "matmul: a bias of {} for {n} columns",
                bias.len()
            );
            let mut out = Vec::with_capacity(batch * size);
            for _ in 0..batch * m {
                out.extend_from_slice(bias);
            }
            out
        }
    };
    if k == 0 || size == 0 {
        return out;
    }
    let read_dst = matches!(start, Start::Bias(_));
    let dst = SendPtr(out.as_mut_ptr());
    let one = |b: usize, parallelism: gemm::Parallelism| {
        // SAFETY: `check` put every element gemm reads inside `lhs.data` / `rhs.data`; the
        // output has capacity for `batch * size` elements and batch `b` writes only its own
        // `size` of them; gemm writes every one (reading them first only where `read_dst`, and
        // then they hold the bias).
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.at(b * size),
                1,
                n as isize,
                read_dst,
                lhs.data.as_ptr().add(lhs.offsets[b]),
                lhs.col_stride as isize,
                lhs.row_stride as isize,
                rhs.data.as_ptr().add(rhs.offsets[b]),
                rhs.col_stride as isize,
                rhs.row_stride as isize,
                1.0,
                alpha,
                false,
                false,
                false,
                parallelism,
            );
        }
    };
    // Large products use every thread inside gemm, unless there are enough of them to give a
    // thread each; burn-flex's choice.
    let work = m * n * k;
    let by_batch = batch > 1 && work * batch >= BATCH_PARALLEL_THRESHOLD;
    if work >= PARALLEL_THRESHOLD && !(by_batch && batch >= 4) {
        (0..batch).for_each(|b| one(b, gemm::Parallelism::Rayon(0)));
    } else if by_batch {
        (0..batch)
            .into_par_iter()
            .for_each(|b| one(b, gemm::Parallelism::None));
    } else {
        (0..batch).for_each(|b| one(b, gemm::Parallelism::None));
    }
    // SAFETY: gemm wrote all `batch * size` elements (the bias rows were there already).
    unsafe { out.set_len(batch * size) };
    out
}

/// The output pointer, shared by the threads that write disjoint batches of it.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);

// SAFETY: each thread writes a disjoint range (one batch) through it.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

simd! {
    fn add_rows(x: &[f32], acc: &mut [f32]) {
        for row in x.chunks_exact(acc.len()) {
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += v;
            }
        }
    }
}

/// The sum of the rows of `x` (`[rows, cols]`, row-major): `[cols]`, a bias's gradient.
///
/// Each rayon task sums a fixed number of rows, then the tasks' sums are added in task order,
/// so the result does not depend on the thread count.
pub fn sum_rows(x: &[f32], cols: usize) -> Vec<f32> {
    assert!(
        cols > 0 && x.len().is_multiple_of(cols),
        "sum_rows: {} elements in rows of {cols}",
        x.len()
    );
    let per_task = rows_per_task(cols).max(LANES);
    let partials: Vec<Vec<f32>> = x
        .par_chunks(per_task * cols)
        .map(|rows| {
            let mut acc = vec![0.0; cols];
            add_rows(rows, &mut acc);
            acc
        })
        .collect();
    let mut total = vec![0.0; cols];
    for partial in partials {
        for (t, p) in total.iter_mut().zip(&partial) {
            *t += p;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `a @ b` by the definition, in f64.
    fn reference(a: &[f32], b: &[f32], [m, k, n]: [usize; 3]) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|p| f64::from(a[i * k + p]) * f64::from(b[p * n + j]))
                    .sum();
                out[i * n + j] = dot as f32;
            }
        }
        out
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 1000) as f32 / 500.0
                    - 1.0
            })
            .collect()
    }

    fn transposed(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        (0..cols * rows)
            .map(|i| x[(i % rows) * cols + i / rows])
            .collect()
    }

    #[test]
    fn products_match_the_definition_for_every_layout_bias_and_scale() {
        let [m, k, n] = [37, 70, 45];
        let (a, b) = (values(m * k, 1), values(k * n, 2));
        let bias = values(n, 3);
        let (at, bt) = (transposed(&a, m, k), transposed(&b, k, n));
        let expected = reference(&a, &b, [m, k, n]);
        for (lhs, rs_a, cs_a) in [(&a, k, 1), (&at, 1, m)] {
            for (rhs, rs_b, cs_b) in [(&b, n, 1), (&bt, 1, k)] {
                let operand = |data, row_stride, col_stride| Operand {
                    data,
                    offsets: &[0],
                    row_stride,
                    col_stride,
                };
                let plain = matmul(
                    operand(lhs, rs_a, cs_a),
                    operand(rhs, rs_b, cs_b),
                    [m, k, n],
                    1.0,
                    Start::Empty,
                );
                let scaled = matmul(
                    operand(lhs, rs_a, cs_a),
                    operand(rhs, rs_b, cs_b),
                    [m, k, n],
                    0.125,
                    Start::Empty,
                );
                let biased = matmul(
                    operand(lhs, rs_a, cs_a),
                    operand(rhs, rs_b, cs_b),
                    [m, k, n],
                    1.0,
                    Start::Bias(&bias),
                );
                for i in 0..m * n {
                    assert!(
                        (plain[i] - expected[i]).abs() < 1e-4,
                        "{i}: {} vs {}",
                        plain[i],
                        expected[i]
                    );
                    assert!((scaled[i] - 0.125 * expected[i]).abs() < 1e-4);
                    assert!((biased[i] - (expected[i] + bias[i % n])).abs() < 1e-4);
                }
            }
        }
    }

    #[test]
    fn batches_read_their_own_offsets_and_run_on_every_path() {
        for [batch, m, k, n] in [[3, 5, 4, 6], [16, 64, 64, 64], [2, 200, 200, 200]] {
            let a = values(batch * m * k, 4);
            let b = values(batch * k * n, 5);
            let a_offsets: Vec<usize> = (0..batch).map(|i| i * m * k).collect();
            let b_offsets: Vec<usize> = (0..batch).map(|i| i * k * n).collect();
            let out = matmul(
                Operand {
                    data: &a,
                    offsets: &a_offsets,
                    row_stride: k,
                    col_stride: 1,
                },
                Operand {
                    data: &b,
                    offsets: &b_offsets,
                    row_stride: n,
                    col_stride: 1,
                },
                [m, k, n],
                1.0,
                Start::Empty,
            );
            for i in 0..batch {
                let expected = reference(
                    &a[i * m * k..(i + 1) * m * k],
                    &b[i * k * n..(i + 1) * k * n],
                    [m, k, n],
                );
                for (o, e) in out[i * m * n..(i + 1) * m * n].iter().zip(&expected) {
                    assert!((o - e).abs() < 1e-3, "batch {i}: {o} vs {e}");
                }
            }
        }
    }

    #[test]
    fn an_empty_inner_dimension_gives_the_start() {
        let none: [f32; 0] = [];
        let operand = |row_stride| Operand {
            data: &none,
            offsets: &[0],
            row_stride,
            col_stride: 1,
        };
        assert_eq!(
            matmul(operand(0), operand(2), [2, 0, 2], 1.0, Start::Empty),
            vec![0.0; 4]
        );
        assert_eq!(
            matmul(
                operand(0),
                operand(2),
                [2, 0, 2],
                1.0,
                Start::Bias(&[1.0, 2.0])
            ),
            vec![1.0, 2.0, 1.0, 2.0]
        );
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn an_operand_past_its_storage_is_refused() {
        let a = values(6, 1);
        let op = Operand {
            data: &a,
            offsets: &[1],
            row_stride: 3,
            col_stride: 1,
        };
        let _ = matmul(op, op, [2, 3, 2], 1.0, Start::Empty);
    }

    #[test]
    fn row_sums_match_a_plain_sum_whatever_the_split() {
        for (rows, cols) in [(1, 5), (3000, 7), (1024, 384)] {
            let x = values(rows * cols, 9);
            let sums = sum_rows(&x, cols);
            for (j, s) in sums.iter().enumerate() {
                let plain: f64 = (0..rows).map(|i| f64::from(x[i * cols + j])).sum();
                assert!(
                    (f64::from(*s) - plain).abs() < 1e-3,
                    "column {j}: {s} vs {plain}"
                );
            }
        }
    }
}
