// C, C++ and assembly sources compiled at test time. Each one exercises ELF
// features the reader and writer must get exactly right.

/** Plain C: locals, globals, weak, hidden, common, TLS, absolute and undefined symbols, negative addends. */
export const BASIC_C = `
#include <stdio.h>
extern char end_marker[];
extern int ext_value(int);
static int counter;
int shared = 5;
int common_var;                         /* SHN_COMMON with -fcommon */
__thread int tls_var = 3;               /* STT_TLS in .tdata */
__attribute__((visibility("hidden"))) int hidden_var = 7;
__attribute__((weak)) int weak_fn(void) { return 11; }
const char *msg = "hello";
char *before_end = end_marker - 100;    /* R_X86_64_64 with a negative addend */
int (*fn_ptr)(int) = ext_value;
asm(".globl abs_sym\\n.set abs_sym, 0xffffffff81000000");
static __attribute__((noinline)) int bump(int by) { counter += by; return counter; }
__attribute__((noinline)) int add(int a, int b) { return a + b + shared + bump(1) + tls_var; }
char *near_end(void) { return end_marker - 16; }
int call_ext(int x) { return ext_value(x) * 3 + weak_fn(); }
`;

/** The kernel's code model: absolute addressing in the top 2 GiB gives R_X86_64_32S. */
export const KERNEL_C = `
extern int jiffies_like;
extern void printk_like(const char *, ...);
static int table[16];
int read_table(int i) { return table[i] + jiffies_like; }
void report(void) { printk_like("value %d\\n", read_table(3)); }
`;

/** C++ inline functions and their statics are emitted in COMDAT groups. */
export const GROUPS_CC = `
inline __attribute__((noinline)) int sq(int x) { static int calls; calls++; return x * x + calls; }
int use(int y) { return sq(y) + 1; }
`;

/** A program whose output shows that every kind of reference still resolves after a round trip. */
export const PROGRAM_C = `
#include <stdio.h>
static const char greeting[] = "round trip";
static int counter = 40;
int shared = 2;
__thread int tls_var = 100;
static __attribute__((noinline)) int bump(void) { return ++counter; }
__attribute__((noinline)) int twice(int x) { return 2 * x; }
int (*table[])(int) = { twice };
int main(void) {
  printf("%s %d %d %d\\n", greeting, bump() + shared, table[0](21), tls_var);
  return 0;
}
`;
