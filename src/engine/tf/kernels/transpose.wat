;; 2-D transpose with WebAssembly SIMD: out (cols x rows) = in (rows x cols)^T, both row-major float32, in 4 x 4
;; blocks (four rows of four loaded, shuffled, stored as four rows of four), where tfjs's wasm Transpose moves
;; one element at a time. rows and cols are multiples of 4. Offsets are bytes in the imported memory.
;; Built into transposeWasm.ts by scripts/build-kernels.mjs (wabt).
(module
  (import "env" "memory" (memory 1))

  (func (export "transpose") (param $in i32) (param $out i32) (param $rows i32) (param $cols i32)
    (local $i i32) (local $j i32) (local $inRow i32) (local $outCol i32) (local $inStride i32) (local $outStride i32)
    (local $p i32) (local $q i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $inStride (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $outStride (i32.shl (local.get $rows) (i32.const 2)))
    ;; Output rows in order (four at a time), so the writes stream; the reads step down the input's rows, whose
    ;; cache lines serve four blocks of columns in turn from L2. (Input rows in order would scatter the writes
    ;; across output rows a power of two apart, which share the same few L1 sets.)
    (local.set $j (i32.const 0))
    (block $doneJ (loop $loopJ
      (br_if $doneJ (i32.ge_u (local.get $j) (local.get $cols)))
      (local.set $i (i32.const 0))
      (block $doneI (loop $loopI
        (br_if $doneI (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $inRow (i32.add (local.get $in) (i32.mul (local.get $i) (local.get $inStride))))
        (local.set $outCol (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2))))
        ;; rows i..i+3, columns j..j+3
        (local.set $p (i32.add (local.get $inRow) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $v0 (v128.load (local.get $p)))
        (local.set $v1 (v128.load (i32.add (local.get $p) (local.get $inStride))))
        (local.set $v2 (v128.load (i32.add (local.get $p) (i32.shl (local.get $inStride) (i32.const 1)))))
        (local.set $v3 (v128.load (i32.add (local.get $p) (i32.mul (local.get $inStride) (i32.const 3)))))
        ;; t0 = (v0[0], v1[0], v0[1], v1[1]), t1 = (v0[2], v1[2], v0[3], v1[3]), likewise t2, t3 from v2, v3
        (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $v0) (local.get $v1)))
        (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $v0) (local.get $v1)))
        (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $v2) (local.get $v3)))
        (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $v2) (local.get $v3)))
        ;; output rows j..j+3, columns i..i+3: (t0[0..1], t2[0..1]), (t0[2..3], t2[2..3]), likewise from t1, t3
        (local.set $q (i32.add (local.get $outCol) (i32.mul (local.get $j) (local.get $outStride))))
        (v128.store (local.get $q) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2)))
        (v128.store (i32.add (local.get $q) (local.get $outStride))
          (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
        (v128.store (i32.add (local.get $q) (i32.shl (local.get $outStride) (i32.const 1)))
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3)))
        (v128.store (i32.add (local.get $q) (i32.mul (local.get $outStride) (i32.const 3)))
          (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $loopI)))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))
      (br $loopJ)))
  )
)
