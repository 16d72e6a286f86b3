"""The PE arithmetic as the engines call it: six functions of a precision's *kernel tuple*.

A precision hands the engines a small ``NamedTuple`` (its kernels: tables and constants as
fields, the arithmetic as static methods of the class). The engines call only the
functions below; Numba resolves each call at compile time from the tuple's class
(``instance_class``), so an engine compiled for one precision has that precision's
arithmetic inlined, never a branch on its type, and the compiled engine is cached per
kernel class like any other argument type. A new precision is a new kernel class with
these six static methods; no engine loop changes.

Values and patterns: a *pattern* is what a register holds (an integer: the register's
bits, sign-extended from its width, which is what stuck-at masks act on); a *value* is
what the arithmetic works on (an int64 for integer precisions, a float32 for float ones).

* ``dec(k, pattern)``: the value of an operand pattern (activation or weight register);
* ``mul(k, w_value, a_value)``: the multiplier's output, as a value;
* ``add(k, s_value, p_value)``: the adder of a PE (psum in + product);
* ``acc(k, acc_value, fold_value)``: the fold accumulator outside the array;
* ``pat(k, value)``: the pattern a register latches for a product or sum value
  (this is where a float NaN becomes the canonical quiet NaN);
* ``val(k, pattern)``: the value of a product or psum register pattern.

Each kernel class also has a field ``zero``: the value a psum chain and the fold
accumulator start from (its type is the value type).

With ``NUMBA_DISABLE_JIT=1`` these functions call the static methods in Python, so the
plain-Python run executes the same arithmetic source. A kernel's parameters must be named as
the function's here (Numba's overloads require it): ``dec(k, pattern)``, ``mul(k, w, a)``,
``add(k, s, p)``, ``acc(k, a, v)``, ``pat(k, v)``, ``val(k, p)``.
"""

from __future__ import annotations

from numba.extending import overload

__all__ = ["dec", "mul", "add", "acc", "pat", "val"]


def dec(k, pattern):
    return type(k).dec(k, pattern)


def mul(k, w, a):
    return type(k).mul(k, w, a)


def add(k, s, p):
    return type(k).add(k, s, p)


def acc(k, a, v):
    return type(k).acc(k, a, v)


def pat(k, v):
    return type(k).pat(k, v)


def val(k, p):
    return type(k).val(k, p)


@overload(dec, jit_options={"cache": True})
def _dec(k, pattern):
    return k.instance_class.dec


@overload(mul, jit_options={"cache": True})
def _mul(k, w, a):
    return k.instance_class.mul


@overload(add, jit_options={"cache": True})
def _add(k, s, p):
    return k.instance_class.add


@overload(acc, jit_options={"cache": True})
def _acc(k, a, v):
    return k.instance_class.acc


@overload(pat, jit_options={"cache": True})
def _pat(k, v):
    return k.instance_class.pat


@overload(val, jit_options={"cache": True})
def _val(k, p):
    return k.instance_class.val
