;; Inverted dropout with WebAssembly SIMD: y = x * m, where m is 1/keep or 0, drawn from the engine's seeded
;; generator (src/engine/util/random.ts, Rng.next: a splitmix32 counter; value i hashes state + (i + 1) * golden)
;; and kept where the 32-bit hash is below keep * 2^32. The same seed gives exactly the mask Rng would draw in
;; JS, so no mask is made, stored, copied into the heap or saved for the gradient: the gradient is the same
;; kernel on dy. Offsets are bytes in the imported memory; n >= 4 (the last vector overlaps the one before
;; when n is not a multiple of 4: each element's mask depends on its index only, so it is computed the same).
;; Built into dropoutWasm.ts by scripts/build-kernels.mjs (wabt).
(module
  (import "env" "memory" (memory 1))

  (func (export "dropout") (param $x i32) (param $y i32) (param $n i32) (param $state i32) (param $threshold i32)
    (param $keepAll i32) (param $scale f32)
    (local $i i32) (local $last i32) (local $s v128) (local $z v128) (local $m v128) (local $scaleV v128) (local $thr v128)
    (local.set $scaleV (f32x4.splat (local.get $scale)))
    (local.set $thr (i32x4.splat (local.get $threshold)))
    (local.set $last (i32.sub (local.get $n) (i32.const 4)))
    (local.set $i (i32.const 0))
    (loop $loop
      (if (i32.gt_u (local.get $i) (local.get $last)) (then (local.set $i (local.get $last))))
      ;; states of elements i .. i+3: state + (i + 1 + lane) * 0x9e3779b9 (wrapping)
      (local.set $s (i32x4.add (i32x4.splat (i32.add (local.get $state) (i32.mul (i32.add (local.get $i) (i32.const 1)) (i32.const 0x9e3779b9))))
                               (v128.const i32x4 0 0x9e3779b9 0x3c6ef372 0xdaa66d2b)))
      (local.set $z (i32x4.mul (v128.xor (local.get $s) (i32x4.shr_u (local.get $s) (i32.const 16))) (i32x4.splat (i32.const 0x85ebca6b))))
      (local.set $z (i32x4.mul (v128.xor (local.get $z) (i32x4.shr_u (local.get $z) (i32.const 13))) (i32x4.splat (i32.const 0xc2b2ae35))))
      (local.set $z (v128.xor (local.get $z) (i32x4.shr_u (local.get $z) (i32.const 16))))
      (local.set $m (v128.bitselect (local.get $scaleV) (v128.const f32x4 0 0 0 0)
        (v128.or (i32x4.lt_u (local.get $z) (local.get $thr)) (i32x4.splat (i32.sub (i32.const 0) (local.get $keepAll))))))
      (v128.store (i32.add (local.get $y) (i32.shl (local.get $i) (i32.const 2)))
        (f32x4.mul (v128.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2)))) (local.get $m)))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br_if $loop (i32.lt_u (local.get $i) (i32.add (local.get $last) (i32.const 4)))))
  )
)
