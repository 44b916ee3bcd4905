/* Interposes open/close/stat/ioctl on mapped device paths and forwards SG_IO and NVMe pass-through
 * commands, unchanged, to `sedsim serve` over its link protocol (Simulator/SimulatorLink). The
 * simulated drive decides what every command means; this file only moves bytes and fills in the
 * kernel structures the way the sg, sd and nvme drivers do. */
#define _GNU_SOURCE
#include "sedsim_preload.h"

#include <dirent.h>
#include <stddef.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/nvme_ioctl.h>
#include <poll.h>
#include <pthread.h>
#include <scsi/sg.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "sedsim_link.h"

/* ---- link protocol: sedsim_link.h is its one definition ---- */
#define LINK_SCSI_COMMAND SedsimLinkOperationScsiCommand
#define LINK_NVME_ADMIN SedsimLinkOperationNvmeAdminCommand
#define LINK_NVME_IO SedsimLinkOperationNvmeIOCommand
#define LINK_OK SedsimLinkStatusOk
#define LINK_HEADER SEDSIM_LINK_REQUEST_HEADER
#define LINK_MAX_FRAME SEDSIM_LINK_MAX_FRAME
#define MAX_TRANSFER (8 << 20)

/* ---- device nodes ---- */
enum node_kind { NODE_SG_CHAR, NODE_SCSI_BLOCK, NODE_NVME_CHAR, NODE_NVME_BLOCK };
#define SCSI_GENERIC_MAJOR_NUMBER 21
#define SCSI_DISK_MAJOR_NUMBER 8
#define BLOCK_EXT_MAJOR_NUMBER 259
/* Used for NVMe controller nodes when the running kernel has no "nvme" character major. */
#define FALLBACK_NVME_CHAR_MAJOR 511

struct mapping {
    char path[PATH_MAX];
    char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int drive;
    enum node_kind kind;
    unsigned minor_number;
};

#define MAX_MAPPINGS 1024
#define MAX_TRACKED_FD 65536

struct open_device {
    int mapping;
    int sock;               /* -1 until connected, and again after a failure */
    pthread_mutex_t lock;
    uint32_t block_size;    /* cached geometry, 0 until first needed */
    uint64_t block_count;
    uint64_t offset;        /* file position for read/write on block nodes */
    int references;         /* descriptors sharing it (dup, dup2, F_DUPFD), under table_lock */
    pthread_mutex_t offset_lock;
};

static struct mapping mappings[MAX_MAPPINGS];
static int mapping_count;
static unsigned nvme_char_major = FALLBACK_NVME_CHAR_MAJOR;
static int kernel_has_nvme_major;
static int debug_enabled;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct open_device *tracked[MAX_TRACKED_FD];

/* ---- the real functions ---- */
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_ioctl)(int, unsigned long, ...);
static int (*real_fstat)(int, struct stat *);
static int (*real_stat)(const char *, struct stat *);
static int (*real_lstat)(const char *, struct stat *);
static int (*real_fstatat)(int, const char *, struct stat *, int);
static int (*real_statx)(int, const char *, int, unsigned, struct statx *);
static int (*real_access)(const char *, int);
static int (*real_faccessat)(int, const char *, int, int);
static FILE *(*real_fopen)(const char *, const char *);
static DIR *(*real_opendir)(const char *);
static struct dirent *(*real_readdir)(DIR *);
static struct dirent64 *(*real_readdir64)(DIR *);
typedef int (*dirent_filter)(const struct dirent *);
typedef int (*dirent_compare)(const struct dirent **, const struct dirent **);
typedef int (*dirent64_filter)(const struct dirent64 *);
typedef int (*dirent64_compare)(const struct dirent64 **, const struct dirent64 **);
static int (*real_scandirat)(int, const char *, struct dirent ***, dirent_filter, dirent_compare);
static int (*real_scandirat64)(int, const char *, struct dirent64 ***, dirent64_filter, dirent64_compare);
static int (*real_closedir)(DIR *);
static int (*real_glob)(const char *, int, int (*)(const char *, int), glob_t *);

static void trace(const char *fmt, ...) {
    if (!debug_enabled) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("sedsim-preload: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void *next_symbol(const char *name) { return dlsym(RTLD_NEXT, name); }

static enum node_kind kind_for_path(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strncmp(base, "nvme", 4) == 0) {
        const char *p = base + 4;
        while (*p >= '0' && *p <= '9') p++;
        return *p == 'n' ? NODE_NVME_BLOCK : NODE_NVME_CHAR;
    }
    if (strncmp(base, "sg", 2) == 0) return NODE_SG_CHAR;
    return NODE_SCSI_BLOCK;
}

/* Parses one PATH=DIR/N entry; returns NULL on success, else why the entry cannot be used. */
static const char *parse_entry(char *entry) {
    char *eq = strchr(entry, '=');
    if (!eq || eq == entry) return "expected /dev/NAME=ARRAY_DIR/N";
    if (mapping_count >= MAX_MAPPINGS) return "the table is full (" "1024" " entries at most)";
    *eq = '\0';
    char *target = eq + 1;
    if (strncmp(target, "sim:", 4) == 0) target += 4;
    char *slash = strrchr(target, '/');
    if (!slash || slash == target || slash[1] == '\0') return "expected /dev/NAME=ARRAY_DIR/N (no drive number after the array directory)";
    char *end = NULL;
    long drive = strtol(slash + 1, &end, 10);
    if (*end != '\0' || drive < 0 || drive > 65535) return "the drive number must be 0 to 65535";
    *slash = '\0';
    struct mapping *m = &mappings[mapping_count];
    if (strlen(entry) >= sizeof m->path) return "the device path is too long";
    /* A node that exists already (/dev/null, a real disk) would have every program's I/O on it sent to the simulated drive. */
    struct stat existing;
    if (real_stat(entry, &existing) == 0) return "that path exists on this machine; map a name that does not (e.g. /dev/sg200)";
    int n = snprintf(m->socket_path, sizeof m->socket_path, "%s/" SEDSIM_LINK_SOCKET_NAME, target);
    if (n < 0 || (size_t)n >= sizeof m->socket_path) return "the array's socket path is longer than a Unix socket allows (107 bytes)";
    strcpy(m->path, entry);
    m->drive = (int)drive;
    m->kind = kind_for_path(entry);
    m->minor_number = 200 + (unsigned)mapping_count;
    mapping_count++;
    return NULL;
}

/* The kernel's "nvme" character major, if it registered one. */
static void read_nvme_char_major(void) {
    FILE *f = real_fopen("/proc/devices", "r");
    if (!f) return;
    char line[128];
    int in_char = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "Character devices", 17) == 0) { in_char = 1; continue; }
        if (strncmp(line, "Block devices", 13) == 0) break;
        unsigned major_number;
        char name[64];
        if (in_char && sscanf(line, "%u %63s", &major_number, name) == 2 && strcmp(name, "nvme") == 0) {
            nvme_char_major = major_number;
            kernel_has_nvme_major = 1;
        }
    }
    fclose(f);
}

static void initialise(void) {
    real_openat = next_symbol("openat");
    real_close = next_symbol("close");
    real_ioctl = next_symbol("ioctl");
    real_fstat = next_symbol("fstat");
    real_stat = next_symbol("stat");
    real_lstat = next_symbol("lstat");
    real_fstatat = next_symbol("fstatat");
    real_statx = next_symbol("statx");
    real_access = next_symbol("access");
    real_faccessat = next_symbol("faccessat");
    real_fopen = next_symbol("fopen");
    real_opendir = next_symbol("opendir");
    real_readdir = next_symbol("readdir");
    real_readdir64 = next_symbol("readdir64");
    real_scandirat = next_symbol("scandirat");
    real_scandirat64 = next_symbol("scandirat64");
    real_glob = next_symbol("glob");
    real_closedir = next_symbol("closedir");
    debug_enabled = getenv("SEDSIM_PRELOAD_DEBUG") != NULL && strcmp(getenv("SEDSIM_PRELOAD_DEBUG"), "0") != 0;
    const char *spec = getenv("SEDSIM_DEVICES");
    if (spec && *spec) {
        char *copy = strdup(spec);
        char *save = NULL;
        for (char *entry = copy ? strtok_r(copy, ",", &save) : NULL; entry; entry = strtok_r(NULL, ",", &save)) {
            char shown[160];
            snprintf(shown, sizeof shown, "%s", entry);  /* parse_entry cuts the entry up */
            const char *why = parse_entry(entry);
            if (why) fprintf(stderr, "sedsim-preload: ignoring SEDSIM_DEVICES entry '%s': %s\n", shown, why);
        }
        free(copy);
    }
    read_nvme_char_major();
    for (int i = 0; i < mapping_count; i++) {
        trace("mapped %s -> %s drive %d", mappings[i].path, mappings[i].socket_path, mappings[i].drive);
    }
}

static void ensure_initialised(void) { pthread_once(&init_once, initialise); }

int sedsim_preload_mapping_count(void) {
    ensure_initialised();
    return mapping_count;
}

static int find_mapping(const char *path) {
    if (!path) return -1;
    for (int i = 0; i < mapping_count; i++) {
        if (strcmp(mappings[i].path, path) == 0) return i;
    }
    return -1;
}

/* The mapping a path names relative to a directory descriptor (the *at calls), or -1. */
static int find_mapping_at(int dirfd, const char *path) {
    if (!path || path[0] == '\0' || mapping_count == 0) return -1;
    if (path[0] == '/') return find_mapping(path);
    char base[PATH_MAX];
    if (dirfd == AT_FDCWD) {
        if (!getcwd(base, sizeof base)) return -1;
    } else {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
        ssize_t n = readlink(link, base, sizeof base - 1);
        if (n <= 0) return -1;
        base[n] = '\0';
    }
    char full[PATH_MAX];
    int n = snprintf(full, sizeof full, "%s/%s", strcmp(base, "/") == 0 ? "" : base, path);
    if (n < 0 || (size_t)n >= sizeof full) return -1;
    return find_mapping(full);
}

static struct open_device *device_for_fd(int fd) {
    if (fd < 0 || fd >= MAX_TRACKED_FD) return NULL;
    pthread_mutex_lock(&table_lock);
    struct open_device *d = tracked[fd];
    pthread_mutex_unlock(&table_lock);
    return d;
}

/* ---- the link ---- */

static int connect_socket(const struct mapping *m) {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    strcpy(addr.sun_path, m->socket_path);
    if (connect(s, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int saved = errno;
        real_close(s);
        errno = saved;
        return -1;
    }
    return s;
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits for `events` until the deadline; 0 ready, -1 timed out or failed. */
static int wait_ready(int s, short events, uint64_t deadline) {
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline) return -1;
        struct pollfd p = { .fd = s, .events = events };
        int rc = poll(&p, 1, (int)(deadline - now > INT_MAX ? INT_MAX : deadline - now));
        if (rc > 0) return (p.revents & (POLLERR | POLLNVAL)) ? -1 : 0;
        if (rc < 0 && errno != EINTR) return -1;
    }
}

static int send_all(int s, const uint8_t *buf, size_t len, uint64_t deadline) {
    size_t done = 0;
    while (done < len) {
        if (wait_ready(s, POLLOUT, deadline) != 0) return -1;
        ssize_t n = send(s, buf + done, len - done, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

static int recv_all(int s, uint8_t *buf, size_t len, uint64_t deadline) {
    size_t done = 0;
    while (done < len) {
        if (wait_ready(s, POLLIN, deadline) != 0) return -1;
        ssize_t n = recv(s, buf + done, len - done, 0);
        if (n == 0) return -1;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

static void put_be(uint8_t *p, uint64_t v, int width) {
    for (int i = 0; i < width; i++) p[i] = (uint8_t)(v >> (8 * (width - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, int width) {
    uint64_t v = 0;
    for (int i = 0; i < width; i++) v = v << 8 | p[i];
    return v;
}

enum exchange_result { EXCHANGE_OK = 0, EXCHANGE_TIMED_OUT = 1, EXCHANGE_UNREACHABLE = 2, EXCHANGE_REFUSED = 3 };

/* Sends one request and returns the answer's payload in *answer (malloc'd, caller frees). A device
 * that does not answer in time loses its connection, so a late answer can never be mistaken for
 * the next command's. */
static enum exchange_result exchange(struct open_device *d, uint8_t operation, uint32_t data_in_length,
                                     const uint8_t *head, size_t head_len, const uint8_t *data_out, size_t data_out_len,
                                     unsigned timeout_ms, uint8_t **answer, size_t *answer_len) {
    const struct mapping *m = &mappings[d->mapping];
    *answer = NULL;
    *answer_len = 0;
    size_t body_len = LINK_HEADER + head_len + data_out_len;
    if (body_len > LINK_MAX_FRAME) return EXCHANGE_REFUSED;
    uint8_t *frame = malloc(4 + body_len);
    if (!frame) return EXCHANGE_REFUSED;
    put_be(frame, body_len, 4);
    uint8_t *h = frame + 4;
    memset(h, 0, LINK_HEADER);
    h[SEDSIM_LINK_OFFSET_OPERATION] = operation;
    put_be(h + SEDSIM_LINK_OFFSET_DRIVE, (uint64_t)m->drive, 2);
    put_be(h + SEDSIM_LINK_OFFSET_LENGTH, data_in_length, 4);
    if (head_len) memcpy(h + LINK_HEADER, head, head_len);
    if (data_out_len) memcpy(h + LINK_HEADER + head_len, data_out, data_out_len);

    uint64_t deadline = now_ms() + (timeout_ms ? timeout_ms : 60000);
    enum exchange_result result = EXCHANGE_OK;
    if (d->sock < 0) d->sock = connect_socket(m);
    if (d->sock < 0) {
        result = EXCHANGE_UNREACHABLE;
    } else if (send_all(d->sock, frame, 4 + body_len, deadline) != 0) {
        result = EXCHANGE_UNREACHABLE;
    } else {
        uint8_t len_bytes[4];
        if (recv_all(d->sock, len_bytes, 4, deadline) != 0) {
            result = now_ms() >= deadline ? EXCHANGE_TIMED_OUT : EXCHANGE_UNREACHABLE;
        } else {
            size_t len = (size_t)get_be(len_bytes, 4);
            uint8_t *body = (len >= 1 && len <= LINK_MAX_FRAME) ? malloc(len) : NULL;
            if (!body) {
                result = EXCHANGE_UNREACHABLE;
            } else if (recv_all(d->sock, body, len, deadline) != 0) {
                free(body);
                result = now_ms() >= deadline ? EXCHANGE_TIMED_OUT : EXCHANGE_UNREACHABLE;
            } else if (body[0] != LINK_OK) {
                trace("simulator refused the command: %.*s", (int)(len - 1 > 200 ? 200 : len - 1), (const char *)body + 1);
                free(body);
                result = EXCHANGE_REFUSED;
            } else {
                *answer_len = len - 1;
                *answer = malloc(len - 1 ? len - 1 : 1);
                if (*answer) memcpy(*answer, body + 1, len - 1);
                else result = EXCHANGE_UNREACHABLE;
                free(body);
            }
        }
    }
    free(frame);
    if (result == EXCHANGE_TIMED_OUT || result == EXCHANGE_UNREACHABLE) {
        if (d->sock >= 0) real_close(d->sock);
        d->sock = -1;
    }
    return result;
}

/* ---- SCSI (SG_IO, sg v3 interface) ---- */

struct scsi_outcome {
    uint8_t status;
    uint8_t sense[255];
    uint8_t sense_len;
    uint8_t *data_in;      /* points into the answer buffer */
    size_t data_in_len;
};

static enum exchange_result scsi_command(struct open_device *d, const uint8_t *cdb, uint8_t cdb_len,
                                         const uint8_t *data_out, size_t data_out_len, uint32_t data_in_len,
                                         unsigned timeout_ms, struct scsi_outcome *out, uint8_t **answer) {
    uint8_t head[1 + 255];
    head[0] = cdb_len;
    memcpy(head + 1, cdb, cdb_len);
    size_t answer_len;
    enum exchange_result r = exchange(d, LINK_SCSI_COMMAND, data_in_len, head, 1 + (size_t)cdb_len, data_out, data_out_len,
                                      timeout_ms, answer, &answer_len);
    if (r != EXCHANGE_OK) return r;
    if (answer_len < 2 || answer_len < 2 + (size_t)(*answer)[1]) {
        free(*answer);
        *answer = NULL;
        return EXCHANGE_REFUSED;
    }
    out->status = (*answer)[0];
    out->sense_len = (*answer)[1];
    memcpy(out->sense, *answer + 2, out->sense_len);
    out->data_in = *answer + 2 + out->sense_len;
    out->data_in_len = answer_len - 2 - out->sense_len;
    if (out->data_in_len > data_in_len) out->data_in_len = data_in_len;
    return EXCHANGE_OK;
}

static int handle_sg_io(struct open_device *d, sg_io_hdr_t *hdr) {
    if (!hdr) { errno = EFAULT; return -1; }
    if (hdr->interface_id != 'S') { errno = ENOSYS; return -1; }
    if (hdr->cmd_len < 6 || hdr->cmd_len > 32 || !hdr->cmdp) { errno = EINVAL; return -1; }
    if (hdr->dxfer_len > MAX_TRANSFER) { errno = ENOMEM; return -1; }
    int to_device = hdr->dxfer_direction == SG_DXFER_TO_DEV;
    int from_device = hdr->dxfer_direction == SG_DXFER_FROM_DEV || hdr->dxfer_direction == SG_DXFER_TO_FROM_DEV;
    size_t len = hdr->dxfer_len;
    if (len && !hdr->dxferp) { errno = EFAULT; return -1; }

    /* Gather scattered data-out buffers (iovec_count > 0) into one. */
    uint8_t *flat = NULL;
    if (hdr->iovec_count > 0 && len) {
        flat = malloc(len);
        if (!flat) { errno = ENOMEM; return -1; }
        if (to_device) {
            const sg_iovec_t *iov = hdr->dxferp;
            size_t off = 0;
            for (int i = 0; i < hdr->iovec_count && off < len; i++) {
                size_t n = iov[i].iov_len < len - off ? iov[i].iov_len : len - off;
                memcpy(flat + off, iov[i].iov_base, n);
                off += n;
            }
        }
    }
    const uint8_t *out_data = to_device ? (flat ? flat : hdr->dxferp) : NULL;

    uint64_t started = now_ms();
    struct scsi_outcome o;
    memset(&o, 0, sizeof o);
    uint8_t *answer = NULL;
    pthread_mutex_lock(&d->lock);
    enum exchange_result r = scsi_command(d, hdr->cmdp, hdr->cmd_len, out_data, to_device ? len : 0,
                                          from_device ? (uint32_t)len : 0, hdr->timeout, &o, &answer);
    pthread_mutex_unlock(&d->lock);
    trace("SG_IO opcode 0x%02x dir %d len %u -> %s status 0x%02x sense key 0x%x", hdr->cmdp[0], hdr->dxfer_direction,
          hdr->dxfer_len, r == EXCHANGE_OK ? "answered" : r == EXCHANGE_TIMED_OUT ? "timed out" : "no device",
          o.status, o.sense_len > 2 ? (o.sense[0] >= 0x72 ? o.sense[1] & 0xF : o.sense[2] & 0xF) : 0);

    hdr->status = 0;
    hdr->masked_status = 0;
    hdr->msg_status = 0;
    hdr->sb_len_wr = 0;
    hdr->host_status = 0;
    hdr->driver_status = 0;
    hdr->resid = 0;
    hdr->info = 0;
    if (r == EXCHANGE_UNREACHABLE || r == EXCHANGE_REFUSED) {
        free(flat);
        free(answer);
        errno = r == EXCHANGE_UNREACHABLE ? ENODEV : EINVAL;
        return -1;
    }
    if (r == EXCHANGE_TIMED_OUT) {
        hdr->host_status = 0x03;            /* DID_TIME_OUT */
        hdr->info = SG_INFO_CHECK;
        hdr->resid = (int)len;
    } else {
        hdr->status = o.status;
        hdr->masked_status = (o.status >> 1) & 0x7F;
        if (o.sense_len && hdr->sbp && hdr->mx_sb_len) {
            uint8_t n = o.sense_len < hdr->mx_sb_len ? o.sense_len : hdr->mx_sb_len;
            memcpy(hdr->sbp, o.sense, n);
            hdr->sb_len_wr = n;
        }
        if (o.sense_len) hdr->driver_status = 0x08;   /* DRIVER_SENSE */
        if (from_device) {
            if (flat) {
                sg_iovec_t *iov = hdr->dxferp;
                size_t off = 0;
                for (int i = 0; i < hdr->iovec_count && off < o.data_in_len; i++) {
                    size_t n = iov[i].iov_len < o.data_in_len - off ? iov[i].iov_len : o.data_in_len - off;
                    memcpy(iov[i].iov_base, o.data_in + off, n);
                    off += n;
                }
            } else if (o.data_in_len) {
                memcpy(hdr->dxferp, o.data_in, o.data_in_len);
            }
            hdr->resid = (int)(len - o.data_in_len);
        }
        if (o.status || hdr->driver_status) hdr->info = SG_INFO_CHECK;
    }
    hdr->duration = (unsigned)(now_ms() - started);
    free(flat);
    free(answer);
    return 0;
}

/* READ CAPACITY(16) for the block-device size ioctls. */
static int scsi_capacity(struct open_device *d, uint64_t *blocks, uint32_t *block_size) {
    uint8_t cdb[16] = { 0x9E, 0x10 };
    cdb[13] = 32;
    struct scsi_outcome o;
    uint8_t *answer = NULL;
    pthread_mutex_lock(&d->lock);
    enum exchange_result r = scsi_command(d, cdb, 16, NULL, 0, 32, 10000, &o, &answer);
    pthread_mutex_unlock(&d->lock);
    int ok = r == EXCHANGE_OK && o.status == 0 && o.data_in_len >= 12;
    if (ok) {
        *blocks = get_be(o.data_in, 8) + 1;
        *block_size = (uint32_t)get_be(o.data_in + 8, 4);
    }
    free(answer);
    if (!ok) errno = EIO;
    return ok ? 0 : -1;
}

/* ---- NVMe ---- */

/* Submits a 64-byte submission queue entry. Returns the NVMe status (>= 0) or -1 with errno. */
static int nvme_submit(struct open_device *d, int admin, const uint8_t sqe[64], void *data, uint32_t data_len,
                       unsigned timeout_ms, uint32_t *result) {
    uint8_t opcode = sqe[0];
    /* The opcode's low bits give the direction: 01 host to controller, 10 controller to host. */
    int to_device = (opcode & 0x01) != 0;
    int from_device = (opcode & 0x02) != 0;
    if (data_len > MAX_TRANSFER) { errno = EINVAL; return -1; }
    if (data_len && !data) { errno = EFAULT; return -1; }
    uint8_t *answer = NULL;
    size_t answer_len = 0;
    pthread_mutex_lock(&d->lock);
    enum exchange_result r = exchange(d, admin ? LINK_NVME_ADMIN : LINK_NVME_IO, from_device ? data_len : 0, sqe, SEDSIM_LINK_NVME_ENTRY_SIZE,
                                      to_device ? data : NULL, to_device ? data_len : 0, timeout_ms, &answer, &answer_len);
    pthread_mutex_unlock(&d->lock);
    if (r != EXCHANGE_OK || answer_len < 6) {
        free(answer);
        trace("NVMe %s opcode 0x%02x -> %s", admin ? "admin" : "I/O", opcode, r == EXCHANGE_TIMED_OUT ? "timed out" : "no device");
        errno = r == EXCHANGE_TIMED_OUT ? EINTR : r == EXCHANGE_REFUSED ? ENOTTY : ENODEV;
        return -1;
    }
    int status = (int)get_be(answer, 2);
    if (result) *result = (uint32_t)get_be(answer + 2, 4);
    size_t got = answer_len - 6;
    if (from_device && data_len) {
        if (got > data_len) got = data_len;
        memcpy(data, answer + 6, got);
    }
    free(answer);
    trace("NVMe %s opcode 0x%02x len %u -> status 0x%04x", admin ? "admin" : "I/O", opcode, data_len, status);
    return status;
}

static void put_le(uint8_t *p, uint64_t v, int width) {
    for (int i = 0; i < width; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void sqe_from_passthru(uint8_t sqe[64], uint8_t opcode, uint8_t flags, uint32_t nsid, uint32_t cdw2, uint32_t cdw3,
                              const uint32_t cdw[6]) {
    memset(sqe, 0, 64);
    sqe[0] = opcode;
    sqe[1] = flags;
    put_le(sqe + 4, nsid, 4);
    put_le(sqe + 8, cdw2, 4);
    put_le(sqe + 12, cdw3, 4);
    for (int i = 0; i < 6; i++) put_le(sqe + 40 + 4 * i, cdw[i], 4);
}

/* NVME_IOCTL_*_CMD and the *64_CMD forms share their layout up to timeout_ms; only the result
 * field after it differs (32 bits at offset 68, or 64 bits at offset 72). */
_Static_assert(offsetof(struct nvme_passthru_cmd, timeout_ms) == offsetof(struct nvme_passthru_cmd64, timeout_ms),
               "the pass-through structures share their leading fields");

static int handle_passthru(struct open_device *d, int admin, struct nvme_passthru_cmd *cmd, int wide_result) {
    if (!cmd) { errno = EFAULT; return -1; }
    uint32_t cdw[6] = { cmd->cdw10, cmd->cdw11, cmd->cdw12, cmd->cdw13, cmd->cdw14, cmd->cdw15 };
    uint8_t sqe[64];
    sqe_from_passthru(sqe, cmd->opcode, cmd->flags, cmd->nsid, cmd->cdw2, cmd->cdw3, cdw);
    uint32_t result = 0;
    int status = nvme_submit(d, admin, sqe, (void *)(uintptr_t)cmd->addr, cmd->data_len, cmd->timeout_ms, &result);
    if (status >= 0) {
        if (wide_result) ((struct nvme_passthru_cmd64 *)cmd)->result = result;
        else cmd->result = result;
    }
    return status;
}

static int nvme_block_size(struct open_device *d, uint32_t *block_size, uint64_t *blocks) {
    uint8_t *ns = malloc(4096);
    if (!ns) { errno = ENOMEM; return -1; }
    uint32_t cdw[6] = { 0x00 };
    uint8_t sqe[64];
    sqe_from_passthru(sqe, 0x06, 0, 1, 0, 0, cdw);
    int status = nvme_submit(d, 1, sqe, ns, 4096, 10000, NULL);
    if (status != 0) {
        free(ns);
        errno = EIO;
        return -1;
    }
    uint8_t lbads = ns[128 + 4 * (ns[26] & 0x0F) + 2];
    *block_size = lbads >= 9 && lbads <= 16 ? 1u << lbads : 512;
    if (blocks) {
        *blocks = 0;
        for (int i = 7; i >= 0; i--) *blocks = *blocks << 8 | ns[i];   /* NSZE, little-endian */
    }
    free(ns);
    return 0;
}

static int handle_submit_io(struct open_device *d, struct nvme_user_io *io) {
    if (!io) { errno = EFAULT; return -1; }
    if (!d->block_size && nvme_block_size(d, &d->block_size, &d->block_count) != 0) return -1;
    uint32_t length = ((uint32_t)io->nblocks + 1) * d->block_size;
    uint32_t cdw[6] = { (uint32_t)io->slba, (uint32_t)(io->slba >> 32), (uint32_t)io->nblocks | (uint32_t)io->control << 16,
                        io->dsmgmt, io->reftag, (uint32_t)io->apptag | (uint32_t)io->appmask << 16 };
    uint8_t sqe[64];
    sqe_from_passthru(sqe, io->opcode, io->flags, 1, 0, 0, cdw);
    return nvme_submit(d, 0, sqe, (void *)(uintptr_t)io->addr, length, 0, NULL);
}

/* ---- read/write on block nodes: the simulated media, as a block device's page cache presents it ---- */

static int geometry(struct open_device *d) {
    if (d->block_size) return 0;
    const struct mapping *m = &mappings[d->mapping];
    uint32_t size = 0;
    uint64_t blocks = 0;
    int rc = m->kind == NODE_SCSI_BLOCK ? scsi_capacity(d, &blocks, &size) : nvme_block_size(d, &size, &blocks);
    if (rc != 0 || size == 0) return -1;
    d->block_count = blocks;
    d->block_size = size;
    return 0;
}

/* Reads or writes whole blocks [lba, lba + n); a locked range fails with EIO, as the kernel reports it. */
static int media_blocks(struct open_device *d, int write, uint8_t *buf, uint64_t lba, uint32_t n) {
    const struct mapping *m = &mappings[d->mapping];
    uint32_t length = n * d->block_size;
    if (m->kind == NODE_SCSI_BLOCK) {
        uint8_t cdb[16] = { write ? 0x8A : 0x88 };
        put_be(cdb + 2, lba, 8);
        put_be(cdb + 10, n, 4);
        struct scsi_outcome o;
        uint8_t *answer = NULL;
        pthread_mutex_lock(&d->lock);
        enum exchange_result r = scsi_command(d, cdb, 16, write ? buf : NULL, write ? length : 0, write ? 0 : length, 60000, &o, &answer);
        pthread_mutex_unlock(&d->lock);
        int ok = r == EXCHANGE_OK && o.status == 0 && (write || o.data_in_len == length);
        if (ok && !write) memcpy(buf, o.data_in, length);
        free(answer);
        if (!ok) { errno = EIO; return -1; }
        return 0;
    }
    uint32_t cdw[6] = { (uint32_t)lba, (uint32_t)(lba >> 32), n - 1, 0, 0, 0 };
    uint8_t sqe[64];
    sqe_from_passthru(sqe, write ? 0x01 : 0x02, 0, 1, 0, 0, cdw);
    int status = nvme_submit(d, 0, sqe, buf, length, 60000, NULL);
    if (status != 0) { errno = EIO; return -1; }
    return 0;
}

#define MEDIA_CHUNK (1 << 20)

static ssize_t media_transfer(struct open_device *d, int write, uint8_t *buf, size_t count, uint64_t offset) {
    if (geometry(d) != 0) { errno = EIO; return -1; }
    uint64_t capacity = d->block_count * d->block_size;
    if (offset >= capacity) {
        if (write && count) { errno = ENOSPC; return -1; }
        return 0;
    }
    if (count > capacity - offset) count = (size_t)(capacity - offset);
    uint8_t *chunk = malloc(MEDIA_CHUNK);
    if (!chunk) { errno = ENOMEM; return -1; }
    size_t done = 0;
    uint32_t bs = d->block_size;
    while (done < count) {
        uint64_t position = offset + done;
        uint64_t lba = position / bs;
        size_t head = (size_t)(position % bs);
        size_t want = count - done;
        uint32_t blocks = (uint32_t)((head + want + bs - 1) / bs);
        if (blocks > MEDIA_CHUNK / bs) blocks = MEDIA_CHUNK / bs;
        size_t span = (size_t)blocks * bs - head;
        if (span > want) span = want;
        /* A partial block is read first so a write changes only the bytes asked for. */
        int partial = head != 0 || (head + span) % bs != 0;
        if (!write || partial) {
            if (media_blocks(d, 0, chunk, lba, blocks) != 0) break;
        }
        if (write) {
            memcpy(chunk + head, buf + done, span);
            if (media_blocks(d, 1, chunk, lba, blocks) != 0) break;
        } else {
            memcpy(buf + done, chunk + head, span);
        }
        done += span;
    }
    free(chunk);
    if (done == 0 && count > 0) return -1;
    return (ssize_t)done;
}

static int is_block_node(const struct open_device *d) {
    enum node_kind kind = mappings[d->mapping].kind;
    return kind == NODE_SCSI_BLOCK || kind == NODE_NVME_BLOCK;
}

/* Lock-free lookup for the hot read/write path: most descriptors are not ours. */
static struct open_device *device_for_io(int fd) {
    if (fd < 0 || fd >= MAX_TRACKED_FD || mapping_count == 0) return NULL;
    return __atomic_load_n(&tracked[fd], __ATOMIC_ACQUIRE);
}

static ssize_t device_rw(struct open_device *d, int write, void *buf, size_t count, off_t offset, int positioned) {
    if (!is_block_node(d)) {
        /* sg's asynchronous write()/read() interface and NVMe character nodes take no data this way. */
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&d->offset_lock);
    uint64_t at = positioned ? (uint64_t)offset : d->offset;
    ssize_t n = media_transfer(d, write, buf, count, at);
    if (n > 0 && !positioned) d->offset = at + (uint64_t)n;
    pthread_mutex_unlock(&d->offset_lock);
    trace("%s %zu bytes at %llu on %s -> %zd", write ? "write" : "read", count, (unsigned long long)at,
          mappings[d->mapping].path, n);
    return n;
}

ssize_t read(int fd, void *buf, size_t count) {
    static ssize_t (*real)(int, void *, size_t);
    struct open_device *d = device_for_io(fd);
    if (d) return device_rw(d, 0, buf, count, 0, 0);
    if (!real) real = next_symbol("read");
    return real(fd, buf, count);
}

ssize_t write(int fd, const void *buf, size_t count) {
    static ssize_t (*real)(int, const void *, size_t);
    struct open_device *d = device_for_io(fd);
    if (d) return device_rw(d, 1, (void *)buf, count, 0, 0);
    if (!real) real = next_symbol("write");
    return real(fd, buf, count);
}

ssize_t pread(int fd, void *buf, size_t count, off_t offset) {
    static ssize_t (*real)(int, void *, size_t, off_t);
    struct open_device *d = device_for_io(fd);
    if (d) return device_rw(d, 0, buf, count, offset, 1);
    if (!real) real = next_symbol("pread");
    return real(fd, buf, count, offset);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    static ssize_t (*real)(int, const void *, size_t, off_t);
    struct open_device *d = device_for_io(fd);
    if (d) return device_rw(d, 1, (void *)buf, count, offset, 1);
    if (!real) real = next_symbol("pwrite");
    return real(fd, buf, count, offset);
}

ssize_t pread64(int fd, void *buf, size_t count, off_t offset) { return pread(fd, buf, count, offset); }
ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) { return pwrite(fd, buf, count, offset); }

/* The vector forms, one buffer after another, stopping at a short transfer. `offset` < 0: the
 * descriptor's own position (readv, writev, and preadv2/pwritev2 with offset -1). */
static ssize_t device_rwv(struct open_device *d, int write, const struct iovec *iov, int iovcnt, off_t offset) {
    if (iovcnt < 0 || iovcnt > IOV_MAX) { errno = EINVAL; return -1; }
    ssize_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len == 0) continue;
        ssize_t n = offset < 0 ? device_rw(d, write, iov[i].iov_base, iov[i].iov_len, 0, 0)
                               : device_rw(d, write, iov[i].iov_base, iov[i].iov_len, offset + total, 1);
        if (n < 0) return total > 0 ? total : -1;
        total += n;
        if ((size_t)n < iov[i].iov_len) break;
    }
    return total;
}

#define VECTOR_IO(name, write, params, args, offset_expr) \
    ssize_t name params { \
        static ssize_t (*real) params; \
        struct open_device *d = device_for_io(fd); \
        if (d) return device_rwv(d, write, iov, iovcnt, offset_expr); \
        if (!real) real = next_symbol(#name); \
        return real args; \
    }

VECTOR_IO(readv, 0, (int fd, const struct iovec *iov, int iovcnt), (fd, iov, iovcnt), -1)
VECTOR_IO(writev, 1, (int fd, const struct iovec *iov, int iovcnt), (fd, iov, iovcnt), -1)
VECTOR_IO(preadv, 0, (int fd, const struct iovec *iov, int iovcnt, off_t offset), (fd, iov, iovcnt, offset), offset)
VECTOR_IO(pwritev, 1, (int fd, const struct iovec *iov, int iovcnt, off_t offset), (fd, iov, iovcnt, offset), offset)
VECTOR_IO(preadv64, 0, (int fd, const struct iovec *iov, int iovcnt, off_t offset), (fd, iov, iovcnt, offset), offset)
VECTOR_IO(pwritev64, 1, (int fd, const struct iovec *iov, int iovcnt, off_t offset), (fd, iov, iovcnt, offset), offset)
VECTOR_IO(preadv2, 0, (int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags), (fd, iov, iovcnt, offset, flags), offset)
VECTOR_IO(pwritev2, 1, (int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags), (fd, iov, iovcnt, offset, flags), offset)
VECTOR_IO(preadv64v2, 0, (int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags), (fd, iov, iovcnt, offset, flags), offset)
VECTOR_IO(pwritev64v2, 1, (int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags), (fd, iov, iovcnt, offset, flags), offset)

/* Memory maps of a simulated node cannot follow the drive (its media lives behind the link):
 * refused, and said so on stderr, rather than mapping the /dev/null descriptor underneath. */
static void *refuse_map(int fd) {
    fprintf(stderr, "sedsim-preload: mmap of %s is not supported on a simulated node; use read/write\n",
            mappings[device_for_io(fd)->mapping].path);
    errno = ENODEV;
    return MAP_FAILED;
}

void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset) {
    static void *(*real)(void *, size_t, int, int, int, off_t);
    if (!(flags & MAP_ANONYMOUS) && device_for_io(fd)) return refuse_map(fd);
    if (!real) real = next_symbol("mmap");
    return real(addr, length, prot, flags, fd, offset);
}

void *mmap64(void *addr, size_t length, int prot, int flags, int fd, off_t offset) {
    static void *(*real)(void *, size_t, int, int, int, off_t);
    if (!(flags & MAP_ANONYMOUS) && device_for_io(fd)) return refuse_map(fd);
    if (!real) real = next_symbol("mmap64");
    return real(addr, length, prot, flags, fd, offset);
}

off_t lseek(int fd, off_t offset, int whence) {
    static off_t (*real)(int, off_t, int);
    struct open_device *d = device_for_io(fd);
    if (!d) {
        if (!real) real = next_symbol("lseek");
        return real(fd, offset, whence);
    }
    if (!is_block_node(d)) { errno = ESPIPE; return -1; }
    pthread_mutex_lock(&d->offset_lock);
    int64_t base = 0;
    off_t result = -1;
    if (whence == SEEK_SET) base = 0;
    else if (whence == SEEK_CUR) base = (int64_t)d->offset;
    else if (whence == SEEK_END && geometry(d) == 0) base = (int64_t)(d->block_count * d->block_size);
    else { errno = whence == SEEK_END ? EIO : EINVAL; base = -1; }
    if (base >= 0) {
        if (base + offset < 0) errno = EINVAL;
        else result = (off_t)(d->offset = (uint64_t)(base + offset));
    }
    pthread_mutex_unlock(&d->offset_lock);
    return result;
}

off_t lseek64(int fd, off_t offset, int whence) { return lseek(fd, offset, whence); }

/* ---- ioctl dispatch ---- */

static int device_ioctl(struct open_device *d, unsigned long request, void *arg) {
    const struct mapping *m = &mappings[d->mapping];
    int scsi = m->kind == NODE_SG_CHAR || m->kind == NODE_SCSI_BLOCK;
    int block = m->kind == NODE_SCSI_BLOCK || m->kind == NODE_NVME_BLOCK;
    switch (request) {
    case SG_IO:
        if (scsi) return handle_sg_io(d, arg);
        break;
    case SG_GET_VERSION_NUM:
        if (scsi && arg) { *(int *)arg = 30536; return 0; }
        break;
    case SG_EMULATED_HOST:
        if (scsi && arg) { *(int *)arg = 0; return 0; }
        break;
    case SG_GET_TIMEOUT:
        if (scsi) return 60 * 1000;
        break;
    case SG_SET_TIMEOUT:
        if (scsi) return 0;
        break;
    case SG_GET_RESERVED_SIZE:
        if (scsi && arg) { *(int *)arg = 32768; return 0; }
        break;
    case SG_SET_RESERVED_SIZE:
        if (scsi) return 0;
        break;
    case NVME_IOCTL_ID:
        if (m->kind == NODE_NVME_BLOCK) return 1;
        break;
    case NVME_IOCTL_ADMIN_CMD:
        if (!scsi) return handle_passthru(d, 1, arg, 0);
        break;
    case NVME_IOCTL_ADMIN64_CMD:
        if (!scsi) return handle_passthru(d, 1, arg, 1);
        break;
    case NVME_IOCTL_IO_CMD:
        if (!scsi) return handle_passthru(d, 0, arg, 0);
        break;
    case NVME_IOCTL_IO64_CMD:
        if (!scsi) return handle_passthru(d, 0, arg, 1);
        break;
    case NVME_IOCTL_SUBMIT_IO:
        if (m->kind == NODE_NVME_BLOCK) return handle_submit_io(d, arg);
        break;
    case BLKSSZGET:
    case BLKPBSZGET:
    case BLKGETSIZE64:
    case BLKGETSIZE:
        if (block && arg) {
            uint64_t blocks = 0;
            uint32_t size = 0;
            if (geometry(d) != 0) return -1;
            blocks = d->block_count;
            size = d->block_size;
            if (request == BLKGETSIZE64) *(uint64_t *)arg = blocks * size;
            else if (request == BLKGETSIZE) *(unsigned long *)arg = (unsigned long)(blocks * size / 512);
            else *(int *)arg = (int)size;
            return 0;
        }
        break;
    default:
        break;
    }
    trace("ioctl 0x%lx on %s: not supported by this device", request, m->path);
    errno = ENOTTY;
    return -1;
}

/* ---- stat ---- */

static void fill_stat(const struct mapping *m, struct stat *st) {
    memset(st, 0, sizeof *st);
    unsigned major_number;
    switch (m->kind) {
    case NODE_SG_CHAR: major_number = SCSI_GENERIC_MAJOR_NUMBER; st->st_mode = S_IFCHR; break;
    case NODE_NVME_CHAR: major_number = nvme_char_major; st->st_mode = S_IFCHR; break;
    case NODE_NVME_BLOCK: major_number = BLOCK_EXT_MAJOR_NUMBER; st->st_mode = S_IFBLK; break;
    default: major_number = SCSI_DISK_MAJOR_NUMBER; st->st_mode = S_IFBLK; break;
    }
    st->st_mode |= 0660;
    st->st_rdev = makedev(major_number, m->minor_number);
    st->st_dev = makedev(0, 5);
    st->st_ino = 0x5ED000 + m->minor_number;
    st->st_nlink = 1;
    st->st_gid = 6;  /* disk */
    st->st_blksize = 4096;
    time_t now = time(NULL);
    st->st_atime = st->st_mtime = st->st_ctime = now;
}

static void fill_statx(const struct mapping *m, struct statx *sx) {
    struct stat st;
    fill_stat(m, &st);
    memset(sx, 0, sizeof *sx);
    sx->stx_mask = STATX_BASIC_STATS;
    sx->stx_mode = (uint16_t)st.st_mode;
    sx->stx_nlink = 1;
    sx->stx_gid = 6;
    sx->stx_blksize = 4096;
    sx->stx_ino = st.st_ino;
    sx->stx_rdev_major = major(st.st_rdev);
    sx->stx_rdev_minor = minor(st.st_rdev);
    sx->stx_dev_minor = 5;
    sx->stx_atime.tv_sec = sx->stx_mtime.tv_sec = sx->stx_ctime.tv_sec = st.st_mtime;
}

/* ---- open / close ---- */

static void destroy_device(struct open_device *d) {
    if (d->sock >= 0) real_close(d->sock);
    pthread_mutex_destroy(&d->lock);
    pthread_mutex_destroy(&d->offset_lock);
    free(d);
}

/* Stops tracking `fd`; returns its device when no other descriptor shares it (the caller destroys it).
 * Call with table_lock held. */
static struct open_device *untrack_locked(int fd) {
    struct open_device *d = tracked[fd];
    if (!d) return NULL;
    __atomic_store_n(&tracked[fd], NULL, __ATOMIC_RELEASE);
    return --d->references == 0 ? d : NULL;
}

/* Makes `fd` another descriptor of the device `old_fd` is (after dup, dup2, dup3, F_DUPFD). */
static void track_duplicate(int old_fd, int fd) {
    if (old_fd < 0 || old_fd >= MAX_TRACKED_FD || fd < 0 || fd >= MAX_TRACKED_FD || old_fd == fd) return;
    pthread_mutex_lock(&table_lock);
    struct open_device *d = tracked[old_fd];
    struct open_device *gone = untrack_locked(fd);
    if (d) {
        d->references++;
        __atomic_store_n(&tracked[fd], d, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&table_lock);
    if (gone) destroy_device(gone);
}

int dup(int old_fd) {
    static int (*real)(int);
    if (!real) real = next_symbol("dup");
    int fd = real(old_fd);
    if (fd >= 0) track_duplicate(old_fd, fd);
    return fd;
}

int dup2(int old_fd, int new_fd) {
    static int (*real)(int, int);
    if (!real) real = next_symbol("dup2");
    int fd = real(old_fd, new_fd);
    if (fd >= 0) track_duplicate(old_fd, fd);
    return fd;
}

int dup3(int old_fd, int new_fd, int flags) {
    static int (*real)(int, int, int);
    if (!real) real = next_symbol("dup3");
    int fd = real(old_fd, new_fd, flags);
    if (fd >= 0) track_duplicate(old_fd, fd);
    return fd;
}

int fcntl(int fd, int command, ...) {
    static int (*real)(int, int, ...);
    if (!real) real = next_symbol("fcntl");
    va_list ap;
    va_start(ap, command);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int result = real(fd, command, arg);
    if (result >= 0 && (command == F_DUPFD || command == F_DUPFD_CLOEXEC)) track_duplicate(fd, result);
    return result;
}

int fcntl64(int fd, int command, ...) {
    va_list ap;
    va_start(ap, command);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return fcntl(fd, command, arg);
}

static int open_mapped(int index, int flags) {
    struct mapping *m = &mappings[index];
    /* Connect now, so a simulator that is not serving fails the open as a missing device does. */
    int sock = connect_socket(m);
    if (sock < 0) {
        trace("open %s: cannot reach %s (%s)", m->path, m->socket_path, strerror(errno));
        errno = ENXIO;
        return -1;
    }
    /* The descriptor the program sees is /dev/null's: read/write on it do nothing, as the raw
     * pass-through nodes these stand for are driven by ioctl. */
    int fd = real_openat(AT_FDCWD, "/dev/null", O_RDWR | (flags & O_CLOEXEC), 0);
    if (fd < 0) { real_close(sock); return -1; }
    if (fd >= MAX_TRACKED_FD) { real_close(fd); real_close(sock); errno = EMFILE; return -1; }
    struct open_device *d = calloc(1, sizeof *d);
    if (!d) { real_close(fd); real_close(sock); errno = ENOMEM; return -1; }
    d->mapping = index;
    d->sock = sock;
    d->references = 1;
    pthread_mutex_init(&d->lock, NULL);
    pthread_mutex_init(&d->offset_lock, NULL);
    pthread_mutex_lock(&table_lock);
    struct open_device *stale = untrack_locked(fd);
    __atomic_store_n(&tracked[fd], d, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&table_lock);
    if (stale) destroy_device(stale);
    trace("open %s -> fd %d", m->path, fd);
    return fd;
}

/* open(path) is openat(AT_FDCWD, path); the 64 forms add O_LARGEFILE. */
static int open_at(int dirfd, const char *path, int flags, int mode) {
    ensure_initialised();
    int index = find_mapping_at(dirfd, path);
    if (index >= 0) return open_mapped(index, flags);
    return real_openat(dirfd, path, flags, mode);
}

/* The mode argument exists only when the flags create a file. */
#define MODE_ARGUMENT(flags, mode)                                                   \
    int mode = 0;                                                                    \
    if (((flags) & O_CREAT) || ((flags) & O_TMPFILE) == O_TMPFILE) {                 \
        va_list ap;                                                                  \
        va_start(ap, flags);                                                         \
        mode = va_arg(ap, int);                                                      \
        va_end(ap);                                                                  \
    }

int open(const char *path, int flags, ...) { MODE_ARGUMENT(flags, mode) return open_at(AT_FDCWD, path, flags, mode); }
int open64(const char *path, int flags, ...) { MODE_ARGUMENT(flags, mode) return open_at(AT_FDCWD, path, flags | O_LARGEFILE, mode); }
int __open_2(const char *path, int flags) { return open_at(AT_FDCWD, path, flags, 0); }
int __open64_2(const char *path, int flags) { return open_at(AT_FDCWD, path, flags | O_LARGEFILE, 0); }
int openat(int dirfd, const char *path, int flags, ...) { MODE_ARGUMENT(flags, mode) return open_at(dirfd, path, flags, mode); }
int openat64(int dirfd, const char *path, int flags, ...) {
    MODE_ARGUMENT(flags, mode)
    return open_at(dirfd, path, flags | O_LARGEFILE, mode);
}
int __openat_2(int dirfd, const char *path, int flags) { return open_at(dirfd, path, flags, 0); }
int __openat64_2(int dirfd, const char *path, int flags) { return open_at(dirfd, path, flags | O_LARGEFILE, 0); }

int close(int fd) {
    ensure_initialised();
    if (fd >= 0 && fd < MAX_TRACKED_FD) {
        pthread_mutex_lock(&table_lock);
        int was_tracked = tracked[fd] != NULL;
        struct open_device *gone = untrack_locked(fd);
        pthread_mutex_unlock(&table_lock);
        if (gone) destroy_device(gone);
        if (was_tracked) trace("close fd %d", fd);
    }
    return real_close(fd);
}

int ioctl(int fd, unsigned long request, ...) {
    ensure_initialised();
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    struct open_device *d = device_for_fd(fd);
    if (d) return device_ioctl(d, request, arg);
    return real_ioctl(fd, request, arg);
}

/* ---- stat family (glibc 2.33+ exports these; older binaries call the __xstat forms) ---- */

int stat(const char *path, struct stat *st) {
    ensure_initialised();
    int index = find_mapping_at(AT_FDCWD, path);
    if (index >= 0) { fill_stat(&mappings[index], st); return 0; }
    return real_stat(path, st);
}

int lstat(const char *path, struct stat *st) {
    ensure_initialised();
    int index = find_mapping_at(AT_FDCWD, path);
    if (index >= 0) { fill_stat(&mappings[index], st); return 0; }
    return real_lstat(path, st);
}

int fstat(int fd, struct stat *st) {
    ensure_initialised();
    struct open_device *d = device_for_fd(fd);
    if (d) { fill_stat(&mappings[d->mapping], st); return 0; }
    return real_fstat(fd, st);
}

int fstatat(int dirfd, const char *path, struct stat *st, int flags) {
    ensure_initialised();
    int index = find_mapping_at(dirfd, path);
    if (index >= 0) { fill_stat(&mappings[index], st); return 0; }
    if ((flags & AT_EMPTY_PATH) && path[0] == '\0') {
        struct open_device *d = device_for_fd(dirfd);
        if (d) { fill_stat(&mappings[d->mapping], st); return 0; }
    }
    return real_fstatat(dirfd, path, st, flags);
}

int stat64(const char *path, struct stat64 *st) { return stat(path, (struct stat *)st); }
int lstat64(const char *path, struct stat64 *st) { return lstat(path, (struct stat *)st); }
int fstat64(int fd, struct stat64 *st) { return fstat(fd, (struct stat *)st); }
int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags) { return fstatat(dirfd, path, (struct stat *)st, flags); }
int __xstat(int ver, const char *path, struct stat *st) { (void)ver; return stat(path, st); }
int __xstat64(int ver, const char *path, struct stat64 *st) { (void)ver; return stat64(path, st); }
int __lxstat(int ver, const char *path, struct stat *st) { (void)ver; return lstat(path, st); }
int __lxstat64(int ver, const char *path, struct stat64 *st) { (void)ver; return lstat64(path, st); }
int __fxstat(int ver, int fd, struct stat *st) { (void)ver; return fstat(fd, st); }
int __fxstat64(int ver, int fd, struct stat64 *st) { (void)ver; return fstat64(fd, st); }
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags) { (void)ver; return fstatat(dirfd, path, st, flags); }
int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags) {
    (void)ver;
    return fstatat64(dirfd, path, st, flags);
}

int statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *sx) {
    ensure_initialised();
    int index = find_mapping_at(dirfd, path);
    if (index >= 0) { fill_statx(&mappings[index], sx); return 0; }
    if ((flags & AT_EMPTY_PATH) && path[0] == '\0') {
        struct open_device *d = device_for_fd(dirfd);
        if (d) { fill_statx(&mappings[d->mapping], sx); return 0; }
    }
    return real_statx(dirfd, path, flags, mask, sx);
}

int access(const char *path, int mode) {
    ensure_initialised();
    if (find_mapping_at(AT_FDCWD, path) >= 0) return 0;
    return real_access(path, mode);
}

int faccessat(int dirfd, const char *path, int mode, int flags) {
    ensure_initialised();
    if (find_mapping_at(dirfd, path) >= 0) return 0;
    return real_faccessat(dirfd, path, mode, flags);
}

/* Device nodes carry no extended attributes (ls -l asks for ACLs and security labels). The l-forms
 * differ only in not following symbolic links, which mapped nodes are not. */
#define NO_ATTRIBUTE_VALUE(function)                                                      \
    ssize_t function(const char *path, const char *name, void *value, size_t size) {      \
        static ssize_t (*real)(const char *, const char *, void *, size_t);               \
        ensure_initialised();                                                             \
        if (find_mapping_at(AT_FDCWD, path) >= 0) { errno = ENODATA; return -1; }         \
        if (!real) real = next_symbol(#function);                                         \
        return real(path, name, value, size);                                             \
    }
#define NO_ATTRIBUTE_LIST(function)                                                       \
    ssize_t function(const char *path, char *list, size_t size) {                         \
        static ssize_t (*real)(const char *, char *, size_t);                             \
        ensure_initialised();                                                             \
        if (find_mapping_at(AT_FDCWD, path) >= 0) return 0;                               \
        if (!real) real = next_symbol(#function);                                         \
        return real(path, list, size);                                                    \
    }
NO_ATTRIBUTE_VALUE(getxattr)
NO_ATTRIBUTE_VALUE(lgetxattr)
NO_ATTRIBUTE_LIST(listxattr)
NO_ATTRIBUTE_LIST(llistxattr)

/* Programs find the NVMe character major in /proc/devices (libsgutils2 does). When the running
 * kernel has no NVMe driver, the list gains the major our controller nodes use. */
static FILE *devices_with_nvme(void) {
    FILE *real = real_fopen("/proc/devices", "r");
    if (!real) return NULL;
    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    if (!mem) { fclose(real); return NULL; }
    char line[256];
    while (fgets(line, sizeof line, real)) {
        if (strncmp(line, "Block devices", 13) == 0) fprintf(mem, "%3u nvme\n\n", nvme_char_major);
        if (strncmp(line, "Block devices", 13) == 0 || line[0] != '\n') fputs(line, mem);
    }
    fclose(real);
    fclose(mem);
    FILE *result = fmemopen(NULL, size + 1, "w+");
    if (result) {
        fwrite(text, 1, size, result);
        rewind(result);
    }
    free(text);
    return result;
}

static int has_nvme_char_mapping(void) {
    for (int i = 0; i < mapping_count; i++) if (mappings[i].kind == NODE_NVME_CHAR) return 1;
    return 0;
}

FILE *fopen(const char *path, const char *mode) {
    ensure_initialised();
    if (path && strcmp(path, "/proc/devices") == 0 && !kernel_has_nvme_major && has_nvme_char_mapping()) {
        FILE *f = devices_with_nvme();
        if (f) return f;
    }
    return real_fopen(path, mode);
}

FILE *fopen64(const char *path, const char *mode) { return fopen(path, mode); }

/* ---- /dev listings ----
 * Tools that scan for drives (sedutil-cli --scan) list /dev. A listing of /dev gains the mapped
 * nodes that live there, after the real entries, unless a real node of that name exists. */

#define MAX_LISTINGS 16
struct dev_listing {
    DIR *dir;
    int next_mapping;
};
static struct dev_listing listings[MAX_LISTINGS];
static pthread_mutex_t listing_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *dev_entry_name(const struct mapping *m) {
    if (strncmp(m->path, "/dev/", 5) != 0 || strchr(m->path + 5, '/') != NULL) return NULL;
    return m->path + 5;
}

DIR *opendir(const char *path) {
    ensure_initialised();
    DIR *dir = real_opendir(path);
    if (dir && (strcmp(path, "/dev") == 0 || strcmp(path, "/dev/") == 0) && mapping_count > 0) {
        pthread_mutex_lock(&listing_lock);
        for (int i = 0; i < MAX_LISTINGS; i++) {
            if (!listings[i].dir) {
                memset(&listings[i], 0, sizeof listings[i]);
                listings[i].dir = dir;
                break;
            }
        }
        pthread_mutex_unlock(&listing_lock);
    }
    return dir;
}

/* The next mapped node to list after the real entries ran out, or -1. */
static int next_listed_mapping(struct dev_listing *l) {
    while (l->next_mapping < mapping_count) {
        const struct mapping *m = &mappings[l->next_mapping++];
        const char *name = dev_entry_name(m);
        struct stat st;
        if (name && real_lstat(m->path, &st) != 0) return l->next_mapping - 1;
    }
    return -1;
}

static struct dev_listing *listing_for(DIR *dir) {
    for (int i = 0; i < MAX_LISTINGS; i++) if (listings[i].dir == dir) return &listings[i];
    return NULL;
}

static unsigned char dirent_type(const struct mapping *m) {
    return m->kind == NODE_SG_CHAR || m->kind == NODE_NVME_CHAR ? DT_CHR : DT_BLK;
}

/* Fills the next synthetic entry of a /dev listing; returns 0, or -1 when there is none. */
static int next_synthetic_entry(DIR *dir, ino_t *inode, unsigned char *type, char *name, size_t capacity) {
    pthread_mutex_lock(&listing_lock);
    struct dev_listing *l = listing_for(dir);
    int index = l ? next_listed_mapping(l) : -1;
    const char *entry = index >= 0 ? dev_entry_name(&mappings[index]) : NULL;
    if (entry && strlen(entry) < capacity) {
        *inode = 0x5ED000 + mappings[index].minor_number;
        *type = dirent_type(&mappings[index]);
        strcpy(name, entry);
    } else {
        index = -1;
    }
    pthread_mutex_unlock(&listing_lock);
    return index >= 0 ? 0 : -1;
}

/* Synthetic entries live in per-thread storage, valid until the thread's next readdir call. */
static __thread struct dirent synthetic_entry;
static __thread struct dirent64 synthetic_entry64;

struct dirent *readdir(DIR *dir) {
    ensure_initialised();
    struct dirent *real = real_readdir(dir);
    if (real) return real;
    struct dirent *e = &synthetic_entry;
    memset(e, 0, sizeof *e);
    e->d_reclen = sizeof *e;
    return next_synthetic_entry(dir, &e->d_ino, &e->d_type, e->d_name, sizeof e->d_name) == 0 ? e : NULL;
}

struct dirent64 *readdir64(DIR *dir) {
    ensure_initialised();
    struct dirent64 *real = real_readdir64(dir);
    if (real) return real;
    struct dirent64 *e = &synthetic_entry64;
    memset(e, 0, sizeof *e);
    e->d_reclen = sizeof *e;
    ino_t inode = 0;
    if (next_synthetic_entry(dir, &inode, &e->d_type, e->d_name, sizeof e->d_name) != 0) return NULL;
    e->d_ino = inode;
    return e;
}

/* glibc's scandir family reads the directory through its own internal opendir, which no
 * preload library sees: the mapped /dev nodes are added here, through the caller's filter and
 * in the caller's order. True when (dirfd, path) names /dev. */
static int names_dev_directory(int dirfd, const char *path) {
    char joined[PATH_MAX];
    if (path[0] == '/' || dirfd == AT_FDCWD) {
        snprintf(joined, sizeof joined, "%s", path);
    } else {
        char link[64], base[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
        ssize_t n = readlink(link, base, sizeof base - 1);
        if (n < 0) return 0;
        base[n] = 0;
        snprintf(joined, sizeof joined, "%s/%s", base, path);
    }
    char resolved[PATH_MAX];
    if (!realpath(joined, resolved)) return 0;
    return strcmp(resolved, "/dev") == 0;
}

/* One scandir(at)(64): the real listing, then each mapped node that the directory lacks and
 * the filter keeps, then the caller's sort. ENTRY is struct dirent or struct dirent64. */
#define SEDSIM_SCANDIR(ENTRY, REAL, dirfd, path, list, filter, compare)                               \
    do {                                                                                              \
        ensure_initialised();                                                                         \
        if (!REAL) { errno = ENOSYS; return -1; }                                                     \
        int count = REAL(dirfd, path, list, filter, compare);                                          \
        if (count < 0 || mapping_count == 0 || !names_dev_directory(dirfd, path)) return count;        \
        for (int i = 0; i < mapping_count; i++) {                                                     \
            const char *name = dev_entry_name(&mappings[i]);                                           \
            struct stat st;                                                                           \
            if (!name || real_lstat(mappings[i].path, &st) == 0 || strlen(name) >= sizeof ((ENTRY *)0)->d_name) continue; \
            ENTRY *e = calloc(1, sizeof(ENTRY));                                                       \
            if (!e) break;                                                                            \
            e->d_ino = 0x5ED000 + mappings[i].minor_number;                                           \
            e->d_reclen = sizeof(ENTRY);                                                               \
            e->d_type = dirent_type(&mappings[i]);                                                     \
            strcpy(e->d_name, name);                                                                   \
            if (filter && !filter(e)) { free(e); continue; }                                           \
            ENTRY **grown = realloc(*list, (size_t)(count + 1) * sizeof(ENTRY *));                     \
            if (!grown) { free(e); break; }                                                            \
            *list = grown;                                                                            \
            (*list)[count++] = e;                                                                      \
        }                                                                                             \
        if (compare) qsort(*list, (size_t)count, sizeof(ENTRY *), (int (*)(const void *, const void *))compare); \
        return count;                                                                                 \
    } while (0)

int scandirat(int dirfd, const char *path, struct dirent ***list, dirent_filter filter, dirent_compare compare) {
    SEDSIM_SCANDIR(struct dirent, real_scandirat, dirfd, path, list, filter, compare);
}

int scandir(const char *path, struct dirent ***list, dirent_filter filter, dirent_compare compare) {
    return scandirat(AT_FDCWD, path, list, filter, compare);
}

int scandirat64(int dirfd, const char *path, struct dirent64 ***list, dirent64_filter filter, dirent64_compare compare) {
    SEDSIM_SCANDIR(struct dirent64, real_scandirat64, dirfd, path, list, filter, compare);
}

int scandir64(const char *path, struct dirent64 ***list, dirent64_filter filter, dirent64_compare compare) {
    return scandirat64(AT_FDCWD, path, list, filter, compare);
}

static int compare_paths(const void *a, const void *b) {
    return strcoll(*(char *const *)a, *(char *const *)b);
}

/* glob(3) reads directories through glibc's internal opendir too: for a pattern in /dev (no
 * further slash), each mapped node that is not on disk and matches is added, as the real glob
 * would have listed it (GLOB_PERIOD, GLOB_ONLYDIR, GLOB_NOCHECK, GLOB_APPEND, GLOB_DOOFFS and
 * sorting honoured). */
int glob(const char *pattern, int flags, int (*errfunc)(const char *, int), glob_t *found) {
    ensure_initialised();
    if (!real_glob) { errno = ENOSYS; return GLOB_ABORTED; }
    size_t before = (flags & GLOB_APPEND) ? found->gl_pathc : 0;
    int result = real_glob(pattern, flags, errfunc, found);
    if (mapping_count == 0 || strncmp(pattern, "/dev/", 5) != 0 || strchr(pattern + 5, '/') || (flags & GLOB_ONLYDIR)
        || (result != 0 && result != GLOB_NOMATCH)) {
        return result;
    }
    size_t offset = (flags & GLOB_DOOFFS) ? found->gl_offs : 0;
    if (result == GLOB_NOMATCH) {
        found->gl_pathc = before;
        if (!(flags & GLOB_APPEND)) { found->gl_pathv = NULL; found->gl_offs = offset; }
    }
    /* GLOB_NOCHECK answered the pattern itself for want of a match: replaced if a node matches. */
    int pattern_only = (flags & GLOB_NOCHECK) && result == 0 && found->gl_pathc == before + 1
        && strcmp(found->gl_pathv[offset + before], pattern) == 0 && real_access(pattern, F_OK) != 0;
    size_t added = 0;
    for (int i = 0; i < mapping_count; i++) {
        struct stat st;
        if (!dev_entry_name(&mappings[i]) || real_lstat(mappings[i].path, &st) == 0) continue;
        if (fnmatch(pattern, mappings[i].path, FNM_PATHNAME | ((flags & GLOB_PERIOD) ? 0 : FNM_PERIOD)) != 0) continue;
        char *copy = strdup(mappings[i].path);
        if (!copy) break;
        if (pattern_only && added == 0) {
            free(found->gl_pathv[offset + before]);
            found->gl_pathc--;
        }
        char **grown = realloc(found->gl_pathv, (offset + found->gl_pathc + 2) * sizeof(char *));
        if (!grown) { free(copy); break; }
        if (!found->gl_pathv) for (size_t k = 0; k < offset; k++) grown[k] = NULL;
        found->gl_pathv = grown;
        found->gl_pathv[offset + found->gl_pathc++] = copy;
        found->gl_pathv[offset + found->gl_pathc] = NULL;
        added++;
    }
    if (added == 0) return result;
    if (!(flags & GLOB_NOSORT)) {
        qsort(found->gl_pathv + offset + before, found->gl_pathc - before, sizeof(char *), compare_paths);
    }
    return 0;
}

/* On LP64 glibc, glob64 is glob (the two structures are laid out alike). */
_Static_assert(sizeof(glob64_t) == sizeof(glob_t), "glob64_t and glob_t differ on this platform");
int glob64(const char *pattern, int flags, int (*errfunc)(const char *, int), glob64_t *found) {
    return glob(pattern, flags, errfunc, (glob_t *)(void *)found);
}

int closedir(DIR *dir) {
    ensure_initialised();
    pthread_mutex_lock(&listing_lock);
    struct dev_listing *l = listing_for(dir);
    if (l) l->dir = NULL;
    pthread_mutex_unlock(&listing_lock);
    return real_closedir(dir);
}

/* A forked child must not share the parent's connections: it reconnects on its first command. */
static void forget_connections_in_child(void) {
    for (int fd = 0; fd < MAX_TRACKED_FD; fd++) {
        struct open_device *d = tracked[fd];
        if (d && d->sock >= 0) {
            real_close(d->sock);
            d->sock = -1;
        }
    }
}

__attribute__((constructor)) static void preload_start(void) {
    ensure_initialised();
    pthread_atfork(NULL, NULL, forget_connections_in_child);
}
