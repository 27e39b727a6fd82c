;; AdamW's update of one parameter in one SIMD pass (src/engine/train/adamw.ts), instead of fourteen tfjs ops each
;; reading and writing the whole tensor. The float32 operations are tfjs's, in tfjs's order, none fused, so the
;; result is the op-by-op update's bit for bit (test/engine/train/adamw.test.ts):
;;   g = g gradScale (global-norm clipping's factor, 1 when none: g 1 is g exactly)
;;   m' = m b1 + g (1 - b1);  v' = v b2 + (g g)(1 - b2)
;;   u = (m' / c1) / (sqrt(v' / c2) + eps), plus p wd when decayed;  p' = p - u lr
;; Offsets are bytes in the imported memory; n >= 4 (the last vector overlaps the one before when n is not a
;; multiple of 4: the outputs are other buffers than the inputs, so the overlap is computed the same).
;; Built into adamwWasm.ts by scripts/build-kernels.mjs (wabt).
(module
  (import "env" "memory" (memory 1))

  (func (export "adamw") (param $p i32) (param $g i32) (param $m i32) (param $v i32)
    (param $pOut i32) (param $mOut i32) (param $vOut i32) (param $n i32) (param $gradScale f32)
    (param $b1 f32) (param $ob1 f32) (param $b2 f32) (param $ob2 f32) (param $c1 f32) (param $c2 f32)
    (param $eps f32) (param $lr f32) (param $wd f32) (param $decay i32)
    (local $i i32) (local $last i32) (local $at i32)
    (local $pv v128) (local $gv v128) (local $mv v128) (local $vv v128) (local $u v128)
    (local $b1v v128) (local $ob1v v128) (local $b2v v128) (local $ob2v v128) (local $c1v v128) (local $c2v v128)
    (local $epsv v128) (local $lrv v128) (local $wdv v128) (local $scalev v128)
    (local.set $scalev (f32x4.splat (local.get $gradScale)))
    (local.set $b1v (f32x4.splat (local.get $b1)))
    (local.set $ob1v (f32x4.splat (local.get $ob1)))
    (local.set $b2v (f32x4.splat (local.get $b2)))
    (local.set $ob2v (f32x4.splat (local.get $ob2)))
    (local.set $c1v (f32x4.splat (local.get $c1)))
    (local.set $c2v (f32x4.splat (local.get $c2)))
    (local.set $epsv (f32x4.splat (local.get $eps)))
    (local.set $lrv (f32x4.splat (local.get $lr)))
    (local.set $wdv (f32x4.splat (local.get $wd)))
    (local.set $last (i32.sub (local.get $n) (i32.const 4)))
    (local.set $i (i32.const 0))
    (loop $loop
      (if (i32.gt_u (local.get $i) (local.get $last)) (then (local.set $i (local.get $last))))
      (local.set $at (i32.shl (local.get $i) (i32.const 2)))
      (local.set $pv (v128.load (i32.add (local.get $p) (local.get $at))))
      (local.set $gv (f32x4.mul (v128.load (i32.add (local.get $g) (local.get $at))) (local.get $scalev)))
      (local.set $mv (f32x4.add
        (f32x4.mul (v128.load (i32.add (local.get $m) (local.get $at))) (local.get $b1v))
        (f32x4.mul (local.get $gv) (local.get $ob1v))))
      (local.set $vv (f32x4.add
        (f32x4.mul (v128.load (i32.add (local.get $v) (local.get $at))) (local.get $b2v))
        (f32x4.mul (f32x4.mul (local.get $gv) (local.get $gv)) (local.get $ob2v))))
      (local.set $u (f32x4.div
        (f32x4.div (local.get $mv) (local.get $c1v))
        (f32x4.add (f32x4.sqrt (f32x4.div (local.get $vv) (local.get $c2v))) (local.get $epsv))))
      (if (local.get $decay)
        (then (local.set $u (f32x4.add (local.get $u) (f32x4.mul (local.get $pv) (local.get $wdv))))))
      (v128.store (i32.add (local.get $mOut) (local.get $at)) (local.get $mv))
      (v128.store (i32.add (local.get $vOut) (local.get $at)) (local.get $vv))
      (v128.store (i32.add (local.get $pOut) (local.get $at))
        (f32x4.sub (local.get $pv) (f32x4.mul (local.get $u) (local.get $lrv))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br_if $loop (i32.lt_u (local.get $i) (i32.add (local.get $last) (i32.const 4)))))
  )
)
