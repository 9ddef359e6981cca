/*
 * pio_loop.c - the C baseline for `Ringvisor.Bench pio`: the smallest KVM_RUN loop that counts PIO exits.
 *
 * The C# side writes the guest image (page tables, GDT, TSS, code) to a file and passes the entry state on the
 * command line; this program sets up the same VM the kvm engine does (identity map + TSS addresses, one memory slot,
 * in-kernel irqchip and PIT, supported CPUID), enters the guest in 64-bit mode at CPL 0 (the image's stub iretq's
 * to the CPL-3 loop with IOPL = 3), and times the KVM_RUN loop until the guest writes the "done" port.
 *
 * Usage: pio_loop IMAGE MEMSIZE RIP RSP CR3 GDT_BASE GDT_LIMIT TSS_BASE TSS_LIMIT BENCH_PORT DONE_PORT
 * Output: one line "exits=N ns=T cpu_ns=C" (wall time and this thread's CPU time of the loop).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "pio_loop: %s: %s\n", what, strerror(errno));
    exit(1);
}

static unsigned long long arg(char **argv, int i)
{
    return strtoull(argv[i], NULL, 0);
}

static void flat_segment(struct kvm_segment *s, uint16_t selector, int code)
{
    memset(s, 0, sizeof(*s));
    s->base = 0;
    s->limit = 0xffffffff;
    s->selector = selector;
    s->type = code ? 0xb : 0x3;
    s->present = 1;
    s->dpl = 0;
    s->db = code ? 0 : 1;
    s->s = 1;
    s->l = code ? 1 : 0;
    s->g = 1;
}

int main(int argc, char **argv)
{
    if (argc != 12) {
        fprintf(stderr, "usage: pio_loop IMAGE MEMSIZE RIP RSP CR3 GDT_BASE GDT_LIMIT TSS_BASE TSS_LIMIT BENCH_PORT DONE_PORT\n");
        return 2;
    }

    size_t memsize = arg(argv, 2);
    uint16_t bench_port = (uint16_t)arg(argv, 10), done_port = (uint16_t)arg(argv, 11);

    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) die("open /dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) die("KVM_CREATE_VM");
    uint64_t idmap = 0xfffbc000;
    if (ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0) die("KVM_SET_IDENTITY_MAP_ADDR");
    if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0) die("KVM_SET_TSS_ADDR");

    void *mem = mmap(NULL, memsize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) die("mmap guest memory");
    FILE *f = fopen(argv[1], "rb");
    if (!f) die("open image");
    size_t n = fread(mem, 1, memsize, f);
    fclose(f);
    if (n == 0) die("read image");

    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = memsize, .userspace_addr = (uint64_t)mem,
    };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");
    if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) die("KVM_CREATE_IRQCHIP");
    struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
    if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0) die("KVM_CREATE_PIT2");

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) die("KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < 0) die("KVM_GET_VCPU_MMAP_SIZE");
    struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) die("mmap kvm_run");

    int nent = 256;
    struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + nent * sizeof(struct kvm_cpuid_entry2));
    cpuid->nent = nent;
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) die("KVM_GET_SUPPORTED_CPUID");
    if (ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0) die("KVM_SET_CPUID2");

    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) die("KVM_GET_SREGS");
    flat_segment(&sregs.cs, 0x08, 1);
    flat_segment(&sregs.ds, 0x10, 0);
    sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
    memset(&sregs.tr, 0, sizeof(sregs.tr));
    sregs.tr.base = arg(argv, 8);
    sregs.tr.limit = (uint32_t)arg(argv, 9);
    sregs.tr.selector = 0x28;
    sregs.tr.type = 0xb;
    sregs.tr.present = 1;
    sregs.gdt.base = arg(argv, 6);
    sregs.gdt.limit = (uint16_t)arg(argv, 7);
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = 0x80050033; /* PG | WP | NE | ET | MP | PE */
    sregs.cr3 = arg(argv, 5);
    sregs.cr4 = 0x620;      /* OSXMMEXCPT | OSFXSR | PAE */
    sregs.efer = 0x501;     /* LMA | LME | SCE */
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) die("KVM_SET_SREGS");

    struct kvm_regs regs;
    memset(&regs, 0, sizeof(regs));
    regs.rip = arg(argv, 3);
    regs.rsp = arg(argv, 4);
    regs.rflags = 0x2;      /* reserved bit 1; the stub sets IOPL = 3 for CPL 3 */
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");

    unsigned long long exits = 0;
    struct timespec t0, t1, c0, c1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            die("KVM_RUN");
        }
        if (run->exit_reason == KVM_EXIT_IO) {
            if (run->io.port == bench_port) {
                exits++;
                continue;
            }
            if (run->io.port == done_port) break;
            continue;
        }
        ioctl(vcpu, KVM_GET_REGS, &regs);
        ioctl(vcpu, KVM_GET_SREGS, &sregs);
        fprintf(stderr, "pio_loop: unexpected exit reason %u at cs %#x rip %#llx (after %llu exits)\n",
                run->exit_reason, sregs.cs.selector, (unsigned long long)regs.rip, exits);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    unsigned long long ns = (t1.tv_sec - t0.tv_sec) * 1000000000ULL + (t1.tv_nsec - t0.tv_nsec);
    unsigned long long cpu_ns = (c1.tv_sec - c0.tv_sec) * 1000000000ULL + (c1.tv_nsec - c0.tv_nsec);
    printf("exits=%llu ns=%llu cpu_ns=%llu\n", exits, ns, cpu_ns);
    return 0;
}
