// checks_ubsan.cpp -- undefined behaviour in kernel code (TESSERA_SANITIZE=checks).
//
// The kernel units are compiled with -fsanitize=float-cast-overflow,shift-exponent (and
// -fsanitize-recover for both), so a float->integer conversion whose value does not fit the
// integer type, and a shift by a negative amount or by >= the operand's width, call the hooks
// below (no UBSan runtime is linked). In C++ both are undefined; on the GPU cvt.rzi saturates
// and shl/shr clamp the amount, so the host and the GPU would silently disagree. We report them
// (TESSERA_EMU_UNDEFINED) instead of emulating PTX: a kernel that means PTX's saturation says so
// with __float2int_rz and friends, which the emulator implements exactly.
//
// Data layouts: GCC passes a static record { source location, type descriptors }; a type
// descriptor is { u16 kind (0 integer, 1 float), u16 info (integer: log2(bits) << 1 | signed;
// float: bits), char name[] }; a value handle holds the bits of a value of at most 64 bits.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "emu_internal.h"

namespace {

struct SourceLocation {
    const char* file;
    unsigned line, column;
};
struct TypeDescriptor {
    unsigned short kind, info;
    char name[1];
};
struct ShiftData {
    SourceLocation loc;
    const TypeDescriptor* lhs;
    const TypeDescriptor* rhs;
};
struct FloatCastData {
    SourceLocation loc;
    const TypeDescriptor* from;
    const TypeDescriptor* to;
};

std::string int_value(const TypeDescriptor* t, unsigned long v) {
    const unsigned bits = 1u << (t->info >> 1);
    char buf[64];
    if (t->info & 1) {
        long s = bits >= 64 ? (long)v : (long)(v << (64 - bits)) >> (64 - bits);
        snprintf(buf, sizeof buf, "%ld", s);
    } else {
        snprintf(buf, sizeof buf, "%lu", bits >= 64 ? v : v & ((1ul << bits) - 1));
    }
    return buf;
}

std::string float_value(const TypeDescriptor* t, unsigned long v) {
    char buf[64];
    if (t->info == 32) {
        float f;
        unsigned u = (unsigned)v;
        std::memcpy(&f, &u, 4);
        snprintf(buf, sizeof buf, "%.9g", (double)f);
    } else if (t->info == 64) {
        double d;
        std::memcpy(&d, &v, 8);
        snprintf(buf, sizeof buf, "%.17g", d);
    } else {
        snprintf(buf, sizeof buf, "(a %u-bit float)", t->info);
    }
    return buf;
}

[[noreturn]] void report(const std::string& what, const SourceLocation& loc) {
    const std::string msg = what + " (" + tessera_host::base_name(loc.file) + ":" + std::to_string(loc.line) + ")";
    if (!tessera_host::tls_check) {
        fprintf(stderr, "tessera emulator: undefined behaviour outside a kernel thread: %s\n", msg.c_str());
        abort();
    }
    tessera_host::check_failed(TESSERA_EMU_UNDEFINED, msg);
}

void shift(ShiftData* d, unsigned long lhs, unsigned long rhs) {
    report("shift of " + int_value(d->lhs, lhs) + " (" + d->lhs->name + ") by " + int_value(d->rhs, rhs) +
               " bits: the amount is negative or not less than the operand's width (C++ leaves it undefined; "
               "PTX clamps it)",
           d->loc);
}

void float_cast(FloatCastData* d, unsigned long from) {
    report("conversion of " + float_value(d->from, from) + " (" + d->from->name + ") to " + d->to->name +
               ": the value does not fit (C++ leaves it undefined; PTX saturates; use __float2int_rz and friends)",
           d->loc);
}

}  // namespace

extern "C" void __ubsan_handle_shift_out_of_bounds(ShiftData* d, unsigned long l, unsigned long r) { shift(d, l, r); }
extern "C" void __ubsan_handle_shift_out_of_bounds_abort(ShiftData* d, unsigned long l, unsigned long r) {
    shift(d, l, r);
}
extern "C" void __ubsan_handle_float_cast_overflow(FloatCastData* d, unsigned long v) { float_cast(d, v); }
extern "C" void __ubsan_handle_float_cast_overflow_abort(FloatCastData* d, unsigned long v) { float_cast(d, v); }
