;; Fused activation kernels with WebAssembly SIMD: GELU (exact, erf-based, as BERT uses it) and quick GELU
;; (x * sigmoid(1.702 x)), forward and gradient, each one pass over memory instead of the five to eight
;; elementwise passes of tfjs ops (and no erf kernel, the costliest of them on wasm).
;;
;; Phi(x), the normal CDF, uses Abramowitz & Stegun 7.1.26 for erf (absolute error below 1.5e-7):
;;   erf(z) = 1 - (a1 t + a2 t^2 + a3 t^3 + a4 t^4 + a5 t^5) exp(-z^2), t = 1 / (1 + p z), z >= 0,
;; with z = |x| / sqrt 2, so exp(-z^2) = exp(-x^2 / 2), which the gradient needs too (phi(x) is that over
;; sqrt(2 pi)). exp is Cephes' expf: 2^n times a degree-6 polynomial on [-ln2/2, ln2/2].
;;
;; Every function takes byte offsets into the imported memory and an element count n >= 4. Work goes in
;; vectors of 4; the last vector is the final 4 elements (overlapping the one before when n is not a multiple
;; of 4), which is harmless because outputs never alias inputs and each element is computed the same way.
;; Built into activationsWasm.ts by scripts/build-kernels.mjs (wabt).
(module
  (import "env" "memory" (memory 1))

  ;; exp of 4 lanes, arguments clamped to [-87.3, 88.3] (the float32 range of the result).
  (func $exp4 (param $v v128) (result v128)
    (local $n v128) (local $r v128) (local $p v128) (local $r2 v128)
    ;; pmin/pmax: one instruction each on x64 (min/max's NaN rules cost several; a NaN stays NaN either way)
    (local.set $v (f32x4.pmax (f32x4.pmin (local.get $v) (v128.const f32x4 88.3 88.3 88.3 88.3))
                             (v128.const f32x4 -87.3 -87.3 -87.3 -87.3)))
    ;; n = floor(v log2(e) + 1/2)
    (local.set $n (f32x4.floor (f32x4.add (f32x4.mul (local.get $v) (v128.const f32x4 1.44269504088896341 1.44269504088896341 1.44269504088896341 1.44269504088896341))
                                          (v128.const f32x4 0.5 0.5 0.5 0.5))))
    ;; r = v - n ln2, in two parts for precision
    (local.set $r (f32x4.sub (local.get $v) (f32x4.mul (local.get $n) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375))))
    (local.set $r (f32x4.sub (local.get $r) (f32x4.mul (local.get $n) (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
    (local.set $r2 (f32x4.mul (local.get $r) (local.get $r)))
    (local.set $p (v128.const f32x4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1)))
    (local.set $p (f32x4.add (f32x4.add (f32x4.mul (local.get $p) (local.get $r2)) (local.get $r)) (v128.const f32x4 1 1 1 1)))
    ;; times 2^n: n + 127 in the exponent bits (n >= -126 after the clamp, so always a normal number)
    ;; n + 127 as an integer by the magic-number trick (n + 127 + 1.5 * 2^23 holds n + 127 in its low mantissa
    ;; bits), cheaper than trunc_sat's saturation handling; exact for the clamped range of n.
    (f32x4.mul (local.get $p)
      (i32x4.shl (i32x4.sub (f32x4.add (local.get $n) (v128.const f32x4 12583039 12583039 12583039 12583039))
                            (v128.const i32x4 0x4B400000 0x4B400000 0x4B400000 0x4B400000))
                 (i32.const 23)))
  )

  ;; Phi(x) given x and e = exp(-x^2 / 2).
  (func $cdf4 (param $x v128) (param $e v128) (result v128)
    (local $t v128) (local $q v128) (local $tail v128)
    ;; t = 1 / (1 + p |x| / sqrt 2)
    (local.set $t (f32x4.div (v128.const f32x4 1 1 1 1)
      (f32x4.add (v128.const f32x4 1 1 1 1) (f32x4.mul (f32x4.abs (local.get $x)) (v128.const f32x4 0.231641888 0.231641888 0.231641888 0.231641888)))))
    (local.set $q (v128.const f32x4 1.061405429 1.061405429 1.061405429 1.061405429))
    (local.set $q (f32x4.add (f32x4.mul (local.get $q) (local.get $t)) (v128.const f32x4 -1.453152027 -1.453152027 -1.453152027 -1.453152027)))
    (local.set $q (f32x4.add (f32x4.mul (local.get $q) (local.get $t)) (v128.const f32x4 1.421413741 1.421413741 1.421413741 1.421413741)))
    (local.set $q (f32x4.add (f32x4.mul (local.get $q) (local.get $t)) (v128.const f32x4 -0.284496736 -0.284496736 -0.284496736 -0.284496736)))
    (local.set $q (f32x4.add (f32x4.mul (local.get $q) (local.get $t)) (v128.const f32x4 0.254829592 0.254829592 0.254829592 0.254829592)))
    ;; tail = (1 - erf(|x| / sqrt 2)) / 2 = Phi(-|x|)
    (local.set $tail (f32x4.mul (f32x4.mul (f32x4.mul (local.get $q) (local.get $t)) (local.get $e)) (v128.const f32x4 0.5 0.5 0.5 0.5)))
    ;; x >= 0: 1 - tail; x < 0: tail
    (v128.bitselect
      (f32x4.sub (v128.const f32x4 1 1 1 1) (local.get $tail))
      (local.get $tail)
      (f32x4.ge (local.get $x) (v128.const f32x4 0 0 0 0)))
  )

  (func $halfSquareExp (param $x v128) (result v128)
    (call $exp4 (f32x4.mul (f32x4.mul (local.get $x) (local.get $x)) (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))))

  ;; y = x Phi(x)
  (func (export "gelu") (param $x i32) (param $y i32) (param $n i32)
    (local $i i32) (local $last i32) (local $xv v128)
    (local.set $last (i32.shl (i32.sub (local.get $n) (i32.const 4)) (i32.const 2)))
    (local.set $i (i32.const 0))
    (loop $loop
      (if (i32.gt_u (local.get $i) (local.get $last)) (then (local.set $i (local.get $last))))
      (local.set $xv (v128.load (i32.add (local.get $x) (local.get $i))))
      (v128.store (i32.add (local.get $y) (local.get $i))
        (f32x4.mul (local.get $xv) (call $cdf4 (local.get $xv) (call $halfSquareExp (local.get $xv)))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br_if $loop (i32.lt_u (local.get $i) (i32.add (local.get $last) (i32.const 16)))))
  )

  ;; dx = dy (Phi(x) + x phi(x))
  (func (export "gelu_grad") (param $x i32) (param $dy i32) (param $dx i32) (param $n i32)
    (local $i i32) (local $last i32) (local $xv v128) (local $e v128)
    (local.set $last (i32.shl (i32.sub (local.get $n) (i32.const 4)) (i32.const 2)))
    (local.set $i (i32.const 0))
    (loop $loop
      (if (i32.gt_u (local.get $i) (local.get $last)) (then (local.set $i (local.get $last))))
      (local.set $xv (v128.load (i32.add (local.get $x) (local.get $i))))
      (local.set $e (call $halfSquareExp (local.get $xv)))
      (v128.store (i32.add (local.get $dx) (local.get $i))
        (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $i)))
          (f32x4.add (call $cdf4 (local.get $xv) (local.get $e))
            (f32x4.mul (f32x4.mul (local.get $xv) (local.get $e)) (v128.const f32x4 0.398942280401 0.398942280401 0.398942280401 0.398942280401)))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br_if $loop (i32.lt_u (local.get $i) (i32.add (local.get $last) (i32.const 16)))))
  )

  ;; s = sigmoid(1.702 x)
  (func $sigmoid1702 (param $x v128) (result v128)
    (f32x4.div (v128.const f32x4 1 1 1 1)
      (f32x4.add (v128.const f32x4 1 1 1 1) (call $exp4 (f32x4.mul (local.get $x) (v128.const f32x4 -1.702 -1.702 -1.702 -1.702))))))

  ;; y = x sigmoid(1.702 x)
  (func (export "quick_gelu") (param $x i32) (param $y i32) (param $n i32)
    (local $i i32) (local $last i32) (local $xv v128)
    (local.set $last (i32.shl (i32.sub (local.get $n) (i32.const 4)) (i32.const 2)))
    (local.set $i (i32.const 0))
    (loop $loop
      (if (i32.gt_u (local.get $i) (local.get $last)) (then (local.set $i (local.get $last))))
      (local.set $xv (v128.load (i32.add (local.get $x) (local.get $i))))
      (v128.store (i32.add (local.get $y) (local.get $i)) (f32x4.mul (local.get $xv) (call $sigmoid1702 (local.get $xv))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br_if $loop (i32.lt_u (local.get $i) (i32.add (local.get $last) (i32.const 16)))))
  )

  ;; dx = dy (s + 1.702 x s (1 - s))
  (func (export "quick_gelu_grad") (param $x i32) (param $dy i32) (param $dx i32) (param $n i32)
    (local $i i32) (local $last i32) (local $xv v128) (local $s v128)
    (local.set $last (i32.shl (i32.sub (local.get $n) (i32.const 4)) (i32.const 2)))
    (local.set $i (i32.const 0))
    (loop $loop
      (if (i32.gt_u (local.get $i) (local.get $last)) (then (local.set $i (local.get $last))))
      (local.set $xv (v128.load (i32.add (local.get $x) (local.get $i))))
      (local.set $s (call $sigmoid1702 (local.get $xv)))
      (v128.store (i32.add (local.get $dx) (local.get $i))
        (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $i)))
          (f32x4.add (local.get $s)
            (f32x4.mul (f32x4.mul (f32x4.mul (local.get $xv) (v128.const f32x4 1.702 1.702 1.702 1.702)) (local.get $s))
              (f32x4.sub (v128.const f32x4 1 1 1 1) (local.get $s))))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br_if $loop (i32.lt_u (local.get $i) (i32.add (local.get $last) (i32.const 16)))))
  )
)
