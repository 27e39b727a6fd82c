;; Row-wise kernels with WebAssembly SIMD: LayerNorm over the last axis (optionally of x + r, the residual add
;; folded in), its gradient, and the column sum of a matrix (a bias's gradient). Each is one pass over memory
;; where tfjs ops take eight to fifteen (LayerNorm) or a matMul by a row of ones (column sum).
;;
;; Matrices are rows x d float32, row-major, at byte offsets into the imported memory; d is a multiple of 4.
;; LayerNorm is BERT's: biased variance, eps inside the square root, mean and variance in two passes over the
;; row (the row stays in cache), as tfjs computes them.
;; Built into rowsWasm.ts by scripts/build-kernels.mjs (wabt).
(module
  (import "env" "memory" (memory 1))

  ;; Mean and 1/sqrt(variance + eps) of the last row row_stats saw.
  (global $mean (mut f32) (f32.const 0))
  (global $rstd (mut f32) (f32.const 0))

  (func $hsum (param $v v128) (result f32)
    (f32.add (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
             (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

  ;; 4 lanes of s = x + r (or x alone when $res is 0) at byte $o of rows starting at $xr and $rr.
  (func $load_s (param $xr i32) (param $rr i32) (param $res i32) (param $o i32) (result v128)
    (if (result v128) (local.get $res)
      (then (f32x4.add (v128.load (i32.add (local.get $xr) (local.get $o))) (v128.load (i32.add (local.get $rr) (local.get $o)))))
      (else (v128.load (i32.add (local.get $xr) (local.get $o))))))

  ;; Sets $mean and $rstd for the row of s at $xr (+ $rr), $rowBytes long.
  (func $row_stats (param $xr i32) (param $rr i32) (param $res i32) (param $rowBytes i32) (param $eps f32)
    (local $o i32) (local $acc v128) (local $m v128) (local $c v128) (local $n f32)
    (local.set $n (f32.convert_i32_u (i32.shr_u (local.get $rowBytes) (i32.const 2))))
    (local.set $acc (v128.const f32x4 0 0 0 0))
    (local.set $o (i32.const 0))
    (loop $sum
      (local.set $acc (f32x4.add (local.get $acc) (call $load_s (local.get $xr) (local.get $rr) (local.get $res) (local.get $o))))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br_if $sum (i32.lt_u (local.get $o) (local.get $rowBytes))))
    (global.set $mean (f32.div (call $hsum (local.get $acc)) (local.get $n)))
    (local.set $m (f32x4.splat (global.get $mean)))
    (local.set $acc (v128.const f32x4 0 0 0 0))
    (local.set $o (i32.const 0))
    (loop $squares
      (local.set $c (f32x4.sub (call $load_s (local.get $xr) (local.get $rr) (local.get $res) (local.get $o)) (local.get $m)))
      (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $c) (local.get $c))))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br_if $squares (i32.lt_u (local.get $o) (local.get $rowBytes))))
    (global.set $rstd (f32.div (f32.const 1)
      (f32.sqrt (f32.add (f32.div (call $hsum (local.get $acc)) (local.get $n)) (local.get $eps))))))

  ;; y = (s - mean) * rstd * gamma + beta, row by row, with s = x + r when $res (else x).
  (func (export "layer_norm")
    (param $x i32) (param $r i32) (param $res i32) (param $gamma i32) (param $beta i32) (param $y i32)
    (param $rows i32) (param $d i32) (param $eps f32)
    (local $i i32) (local $o i32) (local $rowBytes i32) (local $xr i32) (local $rr i32) (local $yr i32)
    (local $m v128) (local $rs v128)
    (local.set $rowBytes (i32.shl (local.get $d) (i32.const 2)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $row
        (br_if $done (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $xr (i32.add (local.get $x) (i32.mul (local.get $i) (local.get $rowBytes))))
        (local.set $rr (i32.add (local.get $r) (i32.mul (local.get $i) (local.get $rowBytes))))
        (local.set $yr (i32.add (local.get $y) (i32.mul (local.get $i) (local.get $rowBytes))))
        (call $row_stats (local.get $xr) (local.get $rr) (local.get $res) (local.get $rowBytes) (local.get $eps))
        (local.set $m (f32x4.splat (global.get $mean)))
        (local.set $rs (f32x4.splat (global.get $rstd)))
        (local.set $o (i32.const 0))
        (loop $col
          (v128.store (i32.add (local.get $yr) (local.get $o))
            (f32x4.add
              (f32x4.mul
                (f32x4.mul (f32x4.sub (call $load_s (local.get $xr) (local.get $rr) (local.get $res) (local.get $o)) (local.get $m)) (local.get $rs))
                (v128.load (i32.add (local.get $gamma) (local.get $o))))
              (v128.load (i32.add (local.get $beta) (local.get $o)))))
          (local.set $o (i32.add (local.get $o) (i32.const 16)))
          (br_if $col (i32.lt_u (local.get $o) (local.get $rowBytes))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $row))))

  ;; The gradient of layer_norm, recomputing each row's statistics (the row stays in cache). With
  ;; g = dy * gamma and xhat = (s - mean) * rstd:
  ;;   ds = rstd * (g - mean(g) - xhat * mean(g * xhat))   (the gradient of x, and of r: s = x + r)
  ;;   dgamma = sum over rows of dy * xhat, dbeta = sum over rows of dy.
  (func (export "layer_norm_grad")
    (param $x i32) (param $r i32) (param $res i32) (param $gamma i32) (param $dy i32)
    (param $ds i32) (param $dgamma i32) (param $dbeta i32)
    (param $rows i32) (param $d i32) (param $eps f32)
    (local $i i32) (local $o i32) (local $rowBytes i32) (local $xr i32) (local $rr i32) (local $dyr i32) (local $dsr i32)
    (local $m v128) (local $rs v128) (local $xh v128) (local $dyv v128) (local $g v128)
    (local $sg v128) (local $sgx v128) (local $mg v128) (local $mgx v128) (local $n f32)
    (local.set $rowBytes (i32.shl (local.get $d) (i32.const 2)))
    (local.set $n (f32.convert_i32_u (local.get $d)))
    (local.set $o (i32.const 0))
    (loop $zero
      (v128.store (i32.add (local.get $dgamma) (local.get $o)) (v128.const f32x4 0 0 0 0))
      (v128.store (i32.add (local.get $dbeta) (local.get $o)) (v128.const f32x4 0 0 0 0))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br_if $zero (i32.lt_u (local.get $o) (local.get $rowBytes))))
    (local.set $i (i32.const 0))
    (block $done
      (loop $row
        (br_if $done (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $xr (i32.add (local.get $x) (i32.mul (local.get $i) (local.get $rowBytes))))
        (local.set $rr (i32.add (local.get $r) (i32.mul (local.get $i) (local.get $rowBytes))))
        (local.set $dyr (i32.add (local.get $dy) (i32.mul (local.get $i) (local.get $rowBytes))))
        (local.set $dsr (i32.add (local.get $ds) (i32.mul (local.get $i) (local.get $rowBytes))))
        (call $row_stats (local.get $xr) (local.get $rr) (local.get $res) (local.get $rowBytes) (local.get $eps))
        (local.set $m (f32x4.splat (global.get $mean)))
        (local.set $rs (f32x4.splat (global.get $rstd)))
        ;; pass 1: the row's sums of g and g * xhat; dgamma and dbeta
        (local.set $sg (v128.const f32x4 0 0 0 0))
        (local.set $sgx (v128.const f32x4 0 0 0 0))
        (local.set $o (i32.const 0))
        (loop $sums
          (local.set $xh (f32x4.mul (f32x4.sub (call $load_s (local.get $xr) (local.get $rr) (local.get $res) (local.get $o)) (local.get $m)) (local.get $rs)))
          (local.set $dyv (v128.load (i32.add (local.get $dyr) (local.get $o))))
          (local.set $g (f32x4.mul (local.get $dyv) (v128.load (i32.add (local.get $gamma) (local.get $o)))))
          (local.set $sg (f32x4.add (local.get $sg) (local.get $g)))
          (local.set $sgx (f32x4.add (local.get $sgx) (f32x4.mul (local.get $g) (local.get $xh))))
          (v128.store (i32.add (local.get $dgamma) (local.get $o))
            (f32x4.add (v128.load (i32.add (local.get $dgamma) (local.get $o))) (f32x4.mul (local.get $dyv) (local.get $xh))))
          (v128.store (i32.add (local.get $dbeta) (local.get $o))
            (f32x4.add (v128.load (i32.add (local.get $dbeta) (local.get $o))) (local.get $dyv)))
          (local.set $o (i32.add (local.get $o) (i32.const 16)))
          (br_if $sums (i32.lt_u (local.get $o) (local.get $rowBytes))))
        (local.set $mg (f32x4.splat (f32.div (call $hsum (local.get $sg)) (local.get $n))))
        (local.set $mgx (f32x4.splat (f32.div (call $hsum (local.get $sgx)) (local.get $n))))
        ;; pass 2: ds
        (local.set $o (i32.const 0))
        (loop $grad
          (local.set $xh (f32x4.mul (f32x4.sub (call $load_s (local.get $xr) (local.get $rr) (local.get $res) (local.get $o)) (local.get $m)) (local.get $rs)))
          (local.set $g (f32x4.mul (v128.load (i32.add (local.get $dyr) (local.get $o))) (v128.load (i32.add (local.get $gamma) (local.get $o)))))
          (v128.store (i32.add (local.get $dsr) (local.get $o))
            (f32x4.mul (local.get $rs)
              (f32x4.sub (f32x4.sub (local.get $g) (local.get $mg)) (f32x4.mul (local.get $xh) (local.get $mgx)))))
          (local.set $o (i32.add (local.get $o) (i32.const 16)))
          (br_if $grad (i32.lt_u (local.get $o) (local.get $rowBytes))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $row))))

  ;; y[j] = sum over rows of x[row, j].
  (func (export "column_sum") (param $x i32) (param $y i32) (param $rows i32) (param $d i32)
    (local $i i32) (local $o i32) (local $rowBytes i32) (local $xr i32)
    (local.set $rowBytes (i32.shl (local.get $d) (i32.const 2)))
    (local.set $o (i32.const 0))
    (loop $zero
      (v128.store (i32.add (local.get $y) (local.get $o)) (v128.const f32x4 0 0 0 0))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br_if $zero (i32.lt_u (local.get $o) (local.get $rowBytes))))
    (local.set $i (i32.const 0))
    (local.set $xr (local.get $x))
    (block $done
      (loop $row
        (br_if $done (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $o (i32.const 0))
        (loop $col
          (v128.store (i32.add (local.get $y) (local.get $o))
            (f32x4.add (v128.load (i32.add (local.get $y) (local.get $o))) (v128.load (i32.add (local.get $xr) (local.get $o)))))
          (local.set $o (i32.add (local.get $o) (i32.const 16)))
          (br_if $col (i32.lt_u (local.get $o) (local.get $rowBytes))))
        (local.set $xr (i32.add (local.get $xr) (local.get $rowBytes)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $row))))
)
