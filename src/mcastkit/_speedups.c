/* mcastkit._speedups: optional compiled accelerator for MulticastSocket's receive calls
 * and the send fast paths.
 *
 * Owns: one recvmmsg(2) ring per receiver (made on the first read, grown with the traffic,
 * reused) and the building of mcastkit.Datagram objects (payload, source, metadata from
 * the control messages) in C. mcastkit._io._c.CReader wraps it; mcastkit._io keeps the
 * pure-Python and ctypes paths, which give identical Datagrams (tests/core/receive checks this).
 * Also sendmmsg(fd, payloads, sockaddr, flags): one sendmmsg(2) call whose iovecs point
 * straight into the payloads' buffers (no copy; mcastkit._io.BatchSender uses it), and
 * sendto(fd, payload, sockaddr, flags): one sendto(2) to an address packed once
 * (MulticastSocket.sendto uses it).
 * And udp_rows(...): the replay decoder's fixed-offset fast path over a batch of captured
 * frames (mcastkit.capture._fastpath keeps the same loop in Python; tests/record/
 * test_fastpath.py checks both against the general path).
 * Must not: wait (it always reads with MSG_DONTWAIT; mcastkit._io._wait does the waiting;
 * a send blocks only as the socket itself does), loop over partial sends (the caller
 * does), translate errors (it raises plain OSError/BlockingIOError from errno), keep
 * per-source state without a bound (it caches only the last source and the last group),
 * or know platform numbers for control messages (mcastkit._platform passes them in via
 * setup()).
 *
 * Built by hatch_build.py with the interpreter's own flags; when it cannot be built the
 * package installs without it and the ctypes / pure-Python paths run.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <pythread.h>

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define NAME_SIZE 32
#define CTRL_SIZE 256
#define MAX_VLEN 1024
/* The ring is sized to the traffic: it starts at RING_START slots (on the first read, not
 * before) and doubles when a read fills it, up to RING_BYTES of buffer (each slot holds
 * recv_size bytes: a datagram is never cut to fit) and MAX_VLEN slots. The buffers are
 * lent for the call by the reading thread's Scratch (below). A slot is two
 * pieces: COMPACT bytes in one small block (all that datagrams of a usual MTU touch) and
 * the rest of recv_size in an overflow block that stays untouched, so never resident,
 * until a larger datagram comes. One recv() call goes round the ring as often as it must
 * to take max_count datagrams, but stops once BATCH_BYTES of payload were taken: a caller
 * that frees a batch frees at most that much at once, which the allocator keeps for the
 * next batch instead of returning it to the kernel (no page faults per datagram).
 * Datagrams of DIRECT_MIN bytes and more are read straight into their bytes objects (see
 * direct_buffer), which the ring reuses. */
#define RING_START 8
#define COMPACT 2048
/* 8 MiB: 128 slots of a 64 KiB recv_size. The buffers are the thread's (see Scratch), so
 * this is per thread, not per socket; only the COMPACT blocks are written for datagrams of
 * a usual MTU (~256 KiB resident), the rest is address space the kernel never touches.
 * 1 MiB (16 slots) made a busy socket cost one recvmmsg per 16 datagrams: 3-5 % slower
 * drains at 64 and 1400 B than 128 slots (A/B, 20 rounds). */
#define RING_BYTES (8 << 20)
#define BATCH_BYTES (128 << 10)
#define DIRECT_MIN 4096  /* datagrams this long are read straight into their bytes */
#define DIRECT_MAX 32     /* bytes objects one direct read fills, at most */
/* Direct reads: each datagram goes into a bytes object sized to the longest datagram of the
 * last read (the "guess"); the rest of recv_size is the slot's overflow block, so nothing is
 * ever cut, and a longer datagram costs one resize and a copy of its tail. One call takes
 * at most DIRECT_BYTES of such buffers. The ring keeps the bytes objects it handed out and
 * reads into them again once the caller has dropped them: their memory never goes back to
 * malloc, so a long-lived receiver of large datagrams costs no malloc, no free and no page
 * fault per datagram, whatever the heap around it looks like (fresh buffers, freed next to
 * the top of the heap, let glibc trim it and the next batch fault it back in). */
#define DIRECT_BYTES (512 << 10)
/* Reusing a bytes object resets its cached hash, a field CPython deprecated (but keeps)
 * since 3.11: only where it is known to exist and refcounts are plain (no free-threading) */
#if PY_VERSION_HEX < 0x030F0000 && !defined(Py_GIL_DISABLED)
#define RECYCLE 1
#else
#define RECYCLE 0
#endif
#define MAX_RECV_SIZE (1 << 20)  /* MulticastSocket's recv_size limit */
#define MAX_KINDS 32

enum { K_NONE = 0, K_PKTINFO4 = 1, K_PKTINFO6 = 2, K_TTL = 3, K_RXQ_OVFL = 4,
       K_TIMESTAMPNS = 5, K_TOS = 6 };

/* Datagram's slot layout, read from its member descriptors in setup() */
enum { F_DATA, F_SOURCE, F_PORT, F_GROUP, F_IFACE, F_TTL, F_TRUNC, F_DROPS, F_TS, F_TOS,
       F_COUNT };
static const char *field_names[F_COUNT] = {"data", "source", "port", "group", "interface",
                                           "ttl", "truncated", "drops", "timestamp_ns",
                                           "tos"};
static PyTypeObject *dgram_type = NULL;
static Py_ssize_t field_off[F_COUNT];
static struct { int level, type, kind; } kinds[MAX_KINDS];
static int n_kinds = 0;

/* The buffers the kernel writes a read into are scratch space: empty between calls (every
 * datagram is copied into its bytes object, or read straight into it, before read()
 * returns). So one set per thread serves every ring that thread reads: 512 sockets cost
 * one ring's memory, which stays in the cache, instead of 512 rings' (each ring keeps only
 * its size, grown by its own traffic). A read entered from inside another one in the same
 * thread (a finalizer run by the GC while Datagrams are built) gets a private set for that
 * call. Made with malloc, so a thread's exit frees it (pthread key destructor) without the
 * GIL. */
typedef struct Scratch {
    unsigned slots;             /* names, ctrl, iov and hdr hold this many */
    size_t data_cap, over_cap;  /* bytes of the compact and the overflow blocks */
    char *data, *over_data, *names, *ctrl;
    struct iovec *iov;
    struct mmsghdr *hdr;
    int busy;                   /* a read in this thread is using it */
} Scratch;

static pthread_key_t scratch_key;
static int scratch_key_ok = 0;  /* the key was made (module init) */

static void scratch_destroy(void *p) {
    Scratch *s = p;
    if (!s) return;
    free(s->data); free(s->over_data); free(s->names); free(s->ctrl); free(s->iov);
    free(s->hdr); free(s);
}

typedef struct {
    PyObject_HEAD
    int family;
    Py_ssize_t recv_size;
    unsigned slots, want_slots;
    size_t compact, over;  /* a slot's bytes in the compact and in the overflow block */
    unsigned last_max;  /* longest datagram of the last read (sizes the next one) */
    int pend_err;       /* an errno met after datagrams were taken: raised next call */
    /* views of the calling thread's Scratch, set for one call (ring_attach) and NULL
     * otherwise: the ring owns no buffers, only its size (slots) */
    struct Scratch *sc;
    int sc_private;
    char *data, *over_data, *names, *ctrl;
    struct iovec *iov;
    struct mmsghdr *hdr;
    /* one-entry caches: the last source (name bytes -> str, port) and the last group */
    unsigned char src_key[NAME_SIZE];
    socklen_t src_keylen;
    PyObject *src_str, *src_port;
    unsigned char grp_key[16];
    int grp_keylen;
    PyObject *grp_str;
    PyObject *summary;
    /* bytes objects the last direct reads handed out (or had left over), each with the
     * capacity it was made with; reused once only the ring holds them */
    PyObject *held[DIRECT_MAX];
    Py_ssize_t held_cap[DIRECT_MAX];
    unsigned n_held;
    /* Held from before recvmmsg (which runs without the GIL) until the Datagrams are
     * built, and by __init__: no other thread may free, grow or refill the buffers the
     * kernel is writing into. owner: the holder's thread id (0: free), to refuse
     * re-entry from the same thread (a finalizer run by the GC) instead of deadlocking. */
    PyThread_type_lock lock;
    unsigned long owner;
} Ring;

/* Take r->lock; 0 on success, -1 with RuntimeError when this thread already holds it. */
static int ring_lock(Ring *r) {
    unsigned long me = PyThread_get_thread_ident();
    if (r->owner == me) {
        PyErr_SetString(PyExc_RuntimeError, "Ring is already in use by this thread");
        return -1;
    }
    if (!PyThread_acquire_lock(r->lock, NOWAIT_LOCK)) {
        Py_BEGIN_ALLOW_THREADS  /* the holder needs the GIL to finish */
        PyThread_acquire_lock(r->lock, WAIT_LOCK);
        Py_END_ALLOW_THREADS
    }
    r->owner = me;
    return 0;
}

static void ring_unlock(Ring *r) {
    r->owner = 0;
    PyThread_release_lock(r->lock);
}

/* Make the attached scratch hold r->slots slots of this ring's layout and point r's views
 * at it. It only grows: on no memory it keeps what it had (MemoryError, -1). */
static int ring_reserve(Ring *r) {
    Scratch *s = r->sc;
    unsigned n = r->slots ? r->slots : 1;
    if (n > s->slots) {
        char *names = calloc(n, NAME_SIZE), *ctrl = calloc(n, CTRL_SIZE);
        struct iovec *iov = calloc(2 * (size_t)n, sizeof(struct iovec));
        struct mmsghdr *hdr = calloc(n, sizeof(struct mmsghdr));
        if (!names || !ctrl || !iov || !hdr) {
            free(names); free(ctrl); free(iov); free(hdr);
            PyErr_NoMemory();
            return -1;
        }
        free(s->names); free(s->ctrl); free(s->iov); free(s->hdr);
        s->names = names; s->ctrl = ctrl; s->iov = iov; s->hdr = hdr;
        s->slots = n;
    }
    size_t need = (size_t)n * r->compact;
    if (need > s->data_cap) {
        char *d = malloc(need);
        if (!d) { PyErr_NoMemory(); return -1; }
        free(s->data);
        s->data = d; s->data_cap = need;
    }
    need = (size_t)n * r->over;
    if (need > s->over_cap) {
        char *d = malloc(need);
        if (!d) { PyErr_NoMemory(); return -1; }
        free(s->over_data);
        s->over_data = d; s->over_cap = need;
    }
    r->data = s->data; r->over_data = s->over_data; r->names = s->names;
    r->ctrl = s->ctrl; r->iov = s->iov; r->hdr = s->hdr;
    return 0;
}

/* Under r's lock: lend r this thread's scratch (or a private one when a read in this
 * thread already uses it), sized for r. 0, or -1 with an exception set. */
static int ring_attach(Ring *r) {
    Scratch *s = scratch_key_ok ? pthread_getspecific(scratch_key) : NULL;
    int private = 0;
    if (!s && scratch_key_ok) {
        s = calloc(1, sizeof(Scratch));
        if (!s) { PyErr_NoMemory(); return -1; }
        if (pthread_setspecific(scratch_key, s) != 0) { free(s); s = NULL; }
    }
    if (!s || s->busy) {
        s = calloc(1, sizeof(Scratch));
        if (!s) { PyErr_NoMemory(); return -1; }
        private = 1;
    }
    s->busy = 1;
    r->sc = s;
    r->sc_private = private;
    if (ring_reserve(r) < 0) {
        s->busy = 0;
        if (private) scratch_destroy(s);
        r->sc = NULL;
        return -1;
    }
    return 0;
}

static void ring_detach(Ring *r) {
    Scratch *s = r->sc;
    if (!s) return;
    s->busy = 0;
    if (r->sc_private) scratch_destroy(s);
    r->sc = NULL;
    r->data = r->over_data = r->names = r->ctrl = NULL; r->iov = NULL; r->hdr = NULL;
}

/* Let r use `slots` slots from now on (capped by RING_BYTES and MAX_VLEN; never fewer
 * than it has), with the scratch attached. 0, or -1 with MemoryError (size unchanged). */
static int ring_alloc(Ring *r, unsigned slots) {
    unsigned cap = (unsigned)(RING_BYTES / r->recv_size);
    if (cap < 1) cap = 1;
    if (slots > MAX_VLEN) slots = MAX_VLEN;
    if (slots > cap) slots = cap;
    if (slots < 1) slots = 1;
    if (slots <= r->slots) return 0;
    unsigned old = r->slots;
    r->slots = slots;
    if (ring_reserve(r) < 0) {
        r->slots = old;
        return -1;
    }
    return 0;
}

/* A burst of large datagrams that a ring read took (the previous read had seen small ones)
 * wrote into up to every slot's overflow block, making it resident: up to 8 MiB for a full
 * ring. Later large datagrams are read directly (into bytes objects), so give those pages
 * back: the next read makes a fresh block, untouched address space again. */
static void release_overflow(Ring *r) {
    Scratch *s = r->sc;
    if (!s || !s->over_data) return;
    free(s->over_data);  /* the next read makes a fresh (untouched) one */
    s->over_data = r->over_data = NULL;
    s->over_cap = 0;
}

static void drop_held(Ring *r) {
    while (r->n_held > 0) Py_DECREF(r->held[--r->n_held]);
}

static PyObject *Ring_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    Ring *r = (Ring *)type->tp_alloc(type, 0);
    if (!r) return NULL;
    r->lock = PyThread_allocate_lock();
    if (!r->lock) {
        Py_DECREF(r);
        return PyErr_NoMemory();
    }
    return (PyObject *)r;
}

static int Ring_init(Ring *r, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"family", "recv_size", "slots", NULL};
    int family; Py_ssize_t recv_size, slots = 64;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "in|n", kwlist, &family, &recv_size, &slots))
        return -1;
    if (family != AF_INET && family != AF_INET6) {
        PyErr_SetString(PyExc_ValueError, "family must be AF_INET or AF_INET6");
        return -1;
    }
    if (slots < 1) {
        PyErr_SetString(PyExc_ValueError, "slots must be >= 1");
        return -1;
    }
    if (slots > MAX_VLEN) slots = MAX_VLEN;
    if (recv_size < 1 || recv_size > MAX_RECV_SIZE) {
        PyErr_SetString(PyExc_ValueError, "recv_size must be 1-1048576");
        return -1;
    }
    if (dgram_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_speedups.setup() was not called");
        return -1;
    }
    if (ring_lock(r) < 0) return -1;
    r->slots = 0;  /* sized by the first read (lazily, to need) */
    drop_held(r);
    r->family = family;
    r->recv_size = recv_size;
    r->compact = (size_t)recv_size < COMPACT ? (size_t)recv_size : COMPACT;
    r->over = (size_t)recv_size - r->compact;
    r->want_slots = (unsigned)slots;
    r->last_max = 0;
    r->pend_err = 0;
    ring_unlock(r);
    return 0;
}

static void Ring_dealloc(Ring *r) {
    drop_held(r);
    Py_CLEAR(r->src_str); Py_CLEAR(r->src_port); Py_CLEAR(r->grp_str); Py_CLEAR(r->summary);
    if (r->lock) PyThread_free_lock(r->lock);  /* free: a holder keeps a reference */
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyObject *format_source(Ring *r, const unsigned char *name, socklen_t namelen) {
    /* returns a new reference to the source str; sets r->src_port */
    socklen_t keylen = namelen > NAME_SIZE ? NAME_SIZE : namelen;
    if (r->src_str != NULL && keylen == r->src_keylen && memcmp(name, r->src_key, keylen) == 0) {
        Py_INCREF(r->src_str);
        return r->src_str;
    }
    char buf[INET6_ADDRSTRLEN + 16];
    unsigned port = 0;
    sa_family_t af = AF_UNSPEC;
    if (namelen >= sizeof af) memcpy(&af, name, sizeof af);
    if (namelen > NAME_SIZE) namelen = NAME_SIZE;  /* the kernel reports the full length */
    /* by the address's own family: a short or unknown one gives "" and port 0 */
    if (af == AF_INET6 && namelen >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)name;
        if (!inet_ntop(AF_INET6, &s6->sin6_addr, buf, INET6_ADDRSTRLEN)) buf[0] = 0;
        if (s6->sin6_scope_id) {
            size_t l = strlen(buf);
            snprintf(buf + l, sizeof buf - l, "%%%u", (unsigned)s6->sin6_scope_id);
        }
        port = ntohs(s6->sin6_port);
    } else if (af == AF_INET && namelen >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)name;
        if (!inet_ntop(AF_INET, &s4->sin_addr, buf, INET6_ADDRSTRLEN)) buf[0] = 0;
        port = ntohs(s4->sin_port);
    } else {
        buf[0] = 0;
    }
    PyObject *s = PyUnicode_FromString(buf);
    PyObject *p = PyLong_FromUnsignedLong(port);
    if (!s || !p) { Py_XDECREF(s); Py_XDECREF(p); return NULL; }
    Py_XSETREF(r->src_str, s);
    Py_XSETREF(r->src_port, p);
    memcpy(r->src_key, name, keylen);
    r->src_keylen = keylen;
    Py_INCREF(s);
    return s;
}

static PyObject *format_group(Ring *r, int af, const unsigned char *addr) {
    int len = af == AF_INET6 ? 16 : 4;
    if (r->grp_str != NULL && r->grp_keylen == len && memcmp(addr, r->grp_key, len) == 0) {
        Py_INCREF(r->grp_str);
        return r->grp_str;
    }
    char buf[INET6_ADDRSTRLEN];
    if (!inet_ntop(af, addr, buf, sizeof buf)) buf[0] = 0;
    PyObject *s = PyUnicode_FromString(buf);
    if (!s) return NULL;
    Py_XSETREF(r->grp_str, s);
    memcpy(r->grp_key, addr, len);
    r->grp_keylen = len;
    Py_INCREF(s);
    return s;
}

static int kind_of(int level, int type) {
    for (int i = 0; i < n_kinds; i++)
        if (kinds[i].level == level && kinds[i].type == type) return kinds[i].kind;
    return K_NONE;
}

/* sec * 10**9 + nsec as a Python int, for values that overflow 64 bits */
static PyObject *big_ns(int64_t sec, int64_t nsec) {
    PyObject *a = PyLong_FromLongLong(sec), *g = PyLong_FromLong(1000000000L);
    PyObject *b = PyLong_FromLongLong(nsec), *p = NULL, *out = NULL;
    if (a && g && b && (p = PyNumber_Multiply(a, g)) != NULL) out = PyNumber_Add(p, b);
    Py_XDECREF(a); Py_XDECREF(g); Py_XDECREF(b); Py_XDECREF(p);
    return out;
}

/* A buffer of at least `guess` bytes for a direct read (its capacity in *cap): one the ring
 * kept when only the ring still holds it (the caller dropped its datagram, so nothing else
 * can see it change), else a new one. NULL with an exception when out of memory. */
static PyObject *direct_buffer(Ring *r, Py_ssize_t guess, Py_ssize_t *cap) {
#if RECYCLE
    while (r->n_held > 0) {
        unsigned j = --r->n_held;
        PyObject *b = r->held[j];
        if (Py_REFCNT(b) == 1 && r->held_cap[j] >= guess) {
            *cap = r->held_cap[j];
            Py_SET_SIZE(b, *cap);  /* sval[cap] is still the 0 it was made with */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
            ((PyBytesObject *)b)->ob_shash = -1;  /* forget the old payload's hash */
#pragma GCC diagnostic pop
            return b;
        }
        Py_DECREF(b);  /* still in use (the caller keeps it), or too small now */
    }
#endif
    *cap = guess;
    return PyBytes_FromStringAndSize(NULL, guess);
}

/* Keep a direct buffer (a reference, `cap` bytes, size cap) that nothing was read into. */
static void keep_unused(Ring *r, PyObject *b, Py_ssize_t cap) {
#if RECYCLE
    if (r->n_held < DIRECT_MAX) {
        r->held_cap[r->n_held] = cap;
        r->held[r->n_held++] = b;
        return;
    }
#endif
    Py_DECREF(b);
}

/* Give direct buffer *data (capacity cap) of slot i its datagram of `len` bytes. One the
 * datagram nearly fills (at most 1/8 left over) keeps its capacity and is kept for reuse;
 * a shorter datagram's buffer is shrunk; a longer one's grows and gets the datagram's tail
 * from the slot's overflow block. */
static int fit_direct(Ring *r, unsigned i, PyObject **data, Py_ssize_t cap, Py_ssize_t len) {
    if (len > cap) {
        if (_PyBytes_Resize(data, len) < 0) return -1;
        memcpy(PyBytes_AS_STRING(*data) + cap, r->over_data + (size_t)i * r->over,
               (size_t)(len - cap));
        return 0;
    }
#if RECYCLE
    if (cap - len <= cap / 8 && r->n_held < DIRECT_MAX) {
        Py_SET_SIZE(*data, len);
        PyBytes_AS_STRING(*data)[len] = '\0';
        Py_INCREF(*data);
        r->held_cap[r->n_held] = cap;
        r->held[r->n_held++] = *data;
        return 0;
    }
#endif
    return len == cap ? 0 : _PyBytes_Resize(data, len);
}

#define SET(o, f, v) (*(PyObject **)((char *)(o) + field_off[f]) = (v))
#define CMSG_HDR_SIZE (sizeof(size_t) + 2 * sizeof(int))
#define ALIGN_UP(n) (((n) + sizeof(size_t) - 1) & ~(sizeof(size_t) - 1))

/* Build one Datagram from slot i; returns a new reference or NULL. */
static PyObject *build_one(Ring *r, unsigned i, PyObject *payload, Py_ssize_t cap,
                           PyObject **grp_out, long *if_out, int *has_if, long long *dr_out,
                           int *has_dr) {
    /* payload: the bytes object (capacity cap) the kernel wrote the datagram's head into (a
     * reference this function takes over), or NULL to copy it out of slot i */
    struct msghdr *m = &r->hdr[i].msg_hdr;
    Py_ssize_t len = (Py_ssize_t)r->hdr[i].msg_len;
    if (len > r->recv_size) len = r->recv_size;
    PyObject *o = dgram_type->tp_alloc(dgram_type, 0);
    if (!o) { Py_XDECREF(payload); return NULL; }
    PyObject *data = payload;
    if (data != NULL) {
        if (fit_direct(r, i, &data, cap, len) < 0) { Py_DECREF(o); return NULL; }
    } else {
        const char *head = r->data + (size_t)i * r->compact;
        if ((size_t)len <= r->compact) {
            data = PyBytes_FromStringAndSize(head, len);
        } else if ((data = PyBytes_FromStringAndSize(NULL, len)) != NULL) {
            memcpy(PyBytes_AS_STRING(data), head, r->compact);
            memcpy(PyBytes_AS_STRING(data) + r->compact, r->over_data + (size_t)i * r->over,
                   (size_t)len - r->compact);
        }
    }
    if (!data) { Py_DECREF(o); return NULL; }
    SET(o, F_DATA, data);
    PyObject *src = format_source(r, (const unsigned char *)(r->names + (size_t)i * NAME_SIZE),
                                  m->msg_namelen);
    if (!src) { Py_DECREF(o); return NULL; }
    SET(o, F_SOURCE, src);
    Py_INCREF(r->src_port);
    SET(o, F_PORT, r->src_port);
    PyObject *trunc = (m->msg_flags & MSG_TRUNC) ? Py_True : Py_False;
    Py_INCREF(trunc);
    SET(o, F_TRUNC, trunc);
    PyObject *group = NULL, *iface = NULL, *ttl = NULL, *drops = NULL, *ts = NULL, *tos = NULL;
    size_t clen = m->msg_controllen;
    if (clen > CTRL_SIZE) clen = CTRL_SIZE;
    const unsigned char *c = (const unsigned char *)(r->ctrl + (size_t)i * CTRL_SIZE);
    size_t pos = 0;
    *has_if = 0; *has_dr = 0;
    while (pos + CMSG_HDR_SIZE <= clen) {
        size_t cl; int level, type;
        memcpy(&cl, c + pos, sizeof cl);
        memcpy(&level, c + pos + sizeof(size_t), sizeof level);
        memcpy(&type, c + pos + sizeof(size_t) + sizeof(int), sizeof type);
        /* clen - pos >= CMSG_HDR_SIZE here; "pos + cl > clen" could wrap for a huge cl */
        if (cl < CMSG_HDR_SIZE || cl > clen - pos) break;
        const unsigned char *d = c + pos + CMSG_HDR_SIZE;
        size_t n = cl - CMSG_HDR_SIZE;
        PyObject *v = NULL, *v2 = NULL;
        switch (kind_of(level, type)) {
        case K_PKTINFO4:
            if (n >= 12) {
                int32_t ifx; memcpy(&ifx, d, 4);
                v = PyLong_FromLong(ifx);
                v2 = format_group(r, AF_INET, d + 8);
                if (!v || !v2) goto fail_v;
                Py_XSETREF(iface, v); Py_XSETREF(group, v2);
                *if_out = ifx; *has_if = 1;
            }
            break;
        case K_PKTINFO6:
            if (n >= 20) {
                uint32_t ifx; memcpy(&ifx, d + 16, 4);
                v = PyLong_FromUnsignedLong(ifx);
                v2 = format_group(r, AF_INET6, d);
                if (!v || !v2) goto fail_v;
                Py_XSETREF(iface, v); Py_XSETREF(group, v2);
                *if_out = (long)ifx; *has_if = 1;
            }
            break;
        case K_TTL:
        case K_TOS:
            if (n >= 4) { int32_t x; memcpy(&x, d, 4); v = PyLong_FromLong(x); }
            else if (n >= 1) v = PyLong_FromLong(d[0]);
            else break;
            if (!v) goto fail_v;
            if (kind_of(level, type) == K_TTL) Py_XSETREF(ttl, v); else Py_XSETREF(tos, v);
            break;
        case K_RXQ_OVFL:
            if (n >= 4) {
                uint32_t x; memcpy(&x, d, 4);
                v = PyLong_FromUnsignedLong(x);
                if (!v) goto fail_v;
                Py_XSETREF(drops, v);
                *dr_out = x; *has_dr = 1;
            }
            break;
        case K_TIMESTAMPNS:
            if (n >= 16) {
                int64_t sec, nsec, ns; memcpy(&sec, d, 8); memcpy(&nsec, d + 8, 8);
                if (!__builtin_mul_overflow(sec, (int64_t)1000000000, &ns)
                    && !__builtin_add_overflow(ns, nsec, &ns))
                    v = PyLong_FromLongLong(ns);
                else  /* not from a kernel clock, but never undefined behaviour */
                    v = big_ns(sec, nsec);
                if (!v) goto fail_v;
                Py_XSETREF(ts, v);
            }
            break;
        default:
            break;
        }
        pos += ALIGN_UP(cl);
        continue;
    fail_v:
        Py_XDECREF(v); Py_XDECREF(v2);
        Py_XDECREF(group); Py_XDECREF(iface); Py_XDECREF(ttl); Py_XDECREF(drops);
        Py_XDECREF(ts); Py_XDECREF(tos);
        Py_DECREF(o);
        return NULL;
    }
#define OR_NONE(x) ((x) ? (x) : (Py_INCREF(Py_None), Py_None))
    *grp_out = group;  /* borrowed by the caller, owned by the Datagram */
    SET(o, F_GROUP, OR_NONE(group));
    SET(o, F_IFACE, OR_NONE(iface));
    SET(o, F_TTL, OR_NONE(ttl));
    SET(o, F_DROPS, OR_NONE(drops));
    SET(o, F_TS, OR_NONE(ts));
    SET(o, F_TOS, OR_NONE(tos));
    return o;
}

/* One recvmmsg(MSG_DONTWAIT) of up to `want` into the ring's slots, or, when `direct` is
 * given, into those bytes objects (capacity cap[i]) and the slots' overflow blocks for the
 * rest of recv_size; <0 with errno on failure. */
static int ring_read(Ring *r, int fd, unsigned want, PyObject **direct,
                     const Py_ssize_t *cap) {
    for (unsigned i = 0; i < want; i++) {
        struct msghdr *m = &r->hdr[i].msg_hdr;
        struct iovec *v = &r->iov[2 * (size_t)i];
        if (direct) {
            v[0].iov_base = PyBytes_AS_STRING(direct[i]);
            v[0].iov_len = (size_t)cap[i];
            v[1].iov_base = r->over_data + (size_t)i * r->over;
            v[1].iov_len = (size_t)(r->recv_size - cap[i]);
            m->msg_iovlen = cap[i] < r->recv_size ? 2 : 1;
        } else {
            v[0].iov_base = r->data + (size_t)i * r->compact;
            v[0].iov_len = r->compact;
            v[1].iov_base = r->over_data + (size_t)i * r->over;
            v[1].iov_len = r->over;
            m->msg_iovlen = r->over ? 2 : 1;
        }
        m->msg_name = r->names + (size_t)i * NAME_SIZE;
        m->msg_namelen = NAME_SIZE;
        m->msg_iov = v;
        m->msg_control = r->ctrl + (size_t)i * CTRL_SIZE;
        m->msg_controllen = CTRL_SIZE;
        m->msg_flags = 0;
    }
    int got, err;
    Py_BEGIN_ALLOW_THREADS
    got = recvmmsg(fd, r->hdr, want, MSG_DONTWAIT, NULL);
    err = errno;
    Py_END_ALLOW_THREADS
    errno = err;
    return got;
}

static PyObject *ring_recv_attached(Ring *r, int fd, unsigned max_count) {
    if (r->pend_err) {  /* an error met after the last call had taken datagrams */
        errno = r->pend_err;
        r->pend_err = 0;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (max_count > r->want_slots) r->want_slots = max_count;
    if (r->slots == 0) {
        unsigned first = r->want_slots < RING_START ? r->want_slots : RING_START;
        if (first > max_count) first = max_count;
        if (ring_alloc(r, first) < 0) return NULL;
    }
    PyObject *out = PyList_New(0);
    if (!out) return NULL;
    unsigned total = 0;
    long long nbytes = 0, ntrunc = 0;
    int uniform = 1;
    int over_touched = 0;  /* a ring read wrote past COMPACT (into the overflow blocks) */
    PyObject *g0 = NULL; long if0 = 0; int hif0 = 0; long long dr0 = 0; int hdr0 = 0;
    unsigned n_direct = 0;  /* direct buffers this call has read into */
    while (total < max_count) {
        unsigned want = max_count - total < r->slots ? max_count - total : r->slots;
        /* big datagrams: the kernel writes straight into the bytes objects (one copy,
         * as recvfrom does), a few at a time, into buffers reused when they come back */
        PyObject *direct[DIRECT_MAX];
        Py_ssize_t cap[DIRECT_MAX];
        int use_direct = r->last_max >= DIRECT_MIN;
        if (use_direct) {
            Py_ssize_t guess = ((Py_ssize_t)r->last_max + 15) & ~(Py_ssize_t)15;
            if (guess > r->recv_size) guess = r->recv_size;
            unsigned fit = (unsigned)((RECYCLE ? DIRECT_BYTES : BATCH_BYTES) / guess);
            if (fit < 1) fit = 1;
            if (fit > DIRECT_MAX) fit = DIRECT_MAX;
            if (n_direct >= fit) break;
            if (want > fit - n_direct) want = fit - n_direct;
            for (unsigned i = 0; i < want; i++) {
                direct[i] = direct_buffer(r, guess, &cap[i]);
                if (!direct[i]) {
                    while (i > 0) { i--; keep_unused(r, direct[i], cap[i]); }
                    Py_DECREF(out);
                    return NULL;
                }
            }
            n_direct += want;
        } else {
            drop_held(r);  /* small datagrams now: keep no large buffers */
            if (r->last_max > 0) {  /* keep the batch's payload near BATCH_BYTES */
                long long room = (long long)BATCH_BYTES - nbytes;
                unsigned fit = room <= (long long)r->last_max ? 1
                                                              : (unsigned)(room / r->last_max);
                if (fit < want) want = fit;
            }
        }
        int got = ring_read(r, fd, want, use_direct ? direct : NULL, cap);
        if (use_direct)  /* the buffers nothing was read into */
            for (unsigned i = got < 0 ? 0 : (unsigned)got; i < want; i++)
                keep_unused(r, direct[i], cap[i]);
        if (got < 0) {
            if (total == 0) { Py_DECREF(out); return PyErr_SetFromErrno(PyExc_OSError); }
            if (errno != EAGAIN && errno != EWOULDBLOCK) r->pend_err = errno;
            break;
        }
        unsigned longest = 0;
        for (int i = 0; i < got; i++) {
            PyObject *g; long ifx = 0; int hif; long long dr = 0; int hdr;
            PyObject *o = build_one(r, (unsigned)i, use_direct ? direct[i] : NULL,
                                    use_direct ? cap[i] : 0, &g, &ifx, &hif, &dr, &hdr);
            if (!o) {
                if (use_direct) for (int j = i + 1; j < got; j++) Py_DECREF(direct[j]);
                Py_DECREF(out);
                return NULL;
            }
            if (PyList_Append(out, o) < 0) { Py_DECREF(o); Py_DECREF(out); return NULL; }
            Py_DECREF(o);
            unsigned len = r->hdr[i].msg_len;
            if (len > longest) longest = len;
            nbytes += len > (unsigned)r->recv_size ? r->recv_size : len;
            if (r->hdr[i].msg_hdr.msg_flags & MSG_TRUNC) ntrunc++;
            if (total == 0 && i == 0) {
                g0 = g; if0 = ifx; hif0 = hif; dr0 = dr; hdr0 = hdr;
            } else if (uniform && (g != g0 || hif != hif0 || (hif && ifx != if0)
                                   || hdr != hdr0 || (hdr && dr != dr0))) {
                uniform = 0;  /* the group str is cached, so one group means one object */
            }
        }
        total += (unsigned)got;
        if (got > 0) r->last_max = longest;
        if (!use_direct && longest > r->compact) over_touched = 1;
        if ((unsigned)got < want || got == 0) break;  /* the queue is empty (for now) */
        if (nbytes >= BATCH_BYTES) break;
        if ((unsigned)got == r->slots && total < max_count && r->slots < r->want_slots
                && ring_alloc(r, r->slots * 2) < 0) {
            PyErr_Clear();  /* no memory to grow: go on with the ring we have */
        }
    }
    if (over_touched && r->last_max >= DIRECT_MIN)
        release_overflow(r);
    if (uniform && total > 0) {
        PyObject *d0 = PyList_GET_ITEM(out, 0);
        PyObject *s = Py_BuildValue("(OOOLL)", *(PyObject **)((char *)d0 + field_off[F_GROUP]),
                                    *(PyObject **)((char *)d0 + field_off[F_IFACE]),
                                    *(PyObject **)((char *)d0 + field_off[F_DROPS]),
                                    nbytes, ntrunc);
        if (!s) { Py_DECREF(out); return NULL; }
        Py_XSETREF(r->summary, s);
    } else {
        Py_INCREF(Py_None);
        Py_XSETREF(r->summary, Py_None);
    }
    return out;
}

/* Under r's lock: one read with the thread's scratch lent for it. */
static PyObject *ring_recv_locked(Ring *r, int fd, unsigned max_count) {
    if (r->recv_size < 1) {  /* Ring.__new__ without __init__: no buffers, no size */
        PyErr_SetString(PyExc_RuntimeError, "Ring.__init__() was not called");
        return NULL;
    }
    if (ring_attach(r) < 0) return NULL;
    PyObject *out = ring_recv_attached(r, fd, max_count);
    ring_detach(r);
    return out;
}

static PyObject *Ring_recv(Ring *r, PyObject *args) {
    int fd; Py_ssize_t max_count;
    if (!PyArg_ParseTuple(args, "in", &fd, &max_count)) return NULL;
    if (max_count < 1) {  /* "I" used to wrap -1 to 4294967295 and read 0 as 1 */
        PyErr_SetString(PyExc_ValueError, "max_count must be >= 1");
        return NULL;
    }
    if (max_count > MAX_VLEN) max_count = MAX_VLEN;  /* the kernel's UIO_MAXIOV */
    if (ring_lock(r) < 0) return NULL;
    PyObject *out = ring_recv_locked(r, fd, (unsigned)max_count);
    ring_unlock(r);
    return out;
}

/* read(sock, max_count) -> (datagrams, summary): the Reader protocol of mcastkit._io in
 * one call, so the batch and its summary are taken together under the ring's lock (no
 * lock, frame or fileno() call in Python per batch). A closed socket (fileno() -1) reads
 * as EBADF, as recvmmsg(-1) would. */
static PyObject *Ring_read(Ring *r, PyObject *const *args, Py_ssize_t nargs) {
    static PyObject *fileno_name = NULL;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "read(sock, max_count) takes 2 arguments");
        return NULL;
    }
    Py_ssize_t max_count = PyLong_AsSsize_t(args[1]);
    if (max_count == -1 && PyErr_Occurred()) return NULL;
    if (max_count < 1) {
        PyErr_SetString(PyExc_ValueError, "max_count must be >= 1");
        return NULL;
    }
    if (max_count > MAX_VLEN) max_count = MAX_VLEN;  /* the kernel's UIO_MAXIOV */
    if (!fileno_name && !(fileno_name = PyUnicode_InternFromString("fileno"))) return NULL;
    PyObject *fdo = PyObject_CallMethodNoArgs(args[0], fileno_name);
    if (!fdo) return NULL;
    long fd = PyLong_AsLong(fdo);
    Py_DECREF(fdo);
    if (fd == -1 && PyErr_Occurred()) return NULL;
    if (fd < 0 || fd > INT_MAX) {
        errno = EBADF;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (ring_lock(r) < 0) return NULL;
    PyObject *out = ring_recv_locked(r, (int)fd, (unsigned)max_count), *pair = NULL;
    if (out) {
        pair = PyTuple_Pack(2, out, r->summary ? r->summary : Py_None);
        Py_DECREF(out);
    }
    ring_unlock(r);
    return pair;
}

/* _decode(data, name, ctrl, flags=0): build one Datagram from these bytes as if the
 * kernel had put them in slot 0 (name and ctrl lengths are reported in full, as the
 * kernel does, even when longer than the slot). For tests: fuzzing the decoders. */
static PyObject *Ring_decode(Ring *r, PyObject *args) {
    Py_buffer data, name, ctrl; int flags = 0;
    if (!PyArg_ParseTuple(args, "y*y*y*|i", &data, &name, &ctrl, &flags)) return NULL;
    PyObject *o = NULL;
    if (r->recv_size < 1) {
        PyErr_SetString(PyExc_RuntimeError, "Ring.__init__() was not called");
    } else if (ring_lock(r) == 0) {
        if (ring_attach(r) < 0) {  /* it lends at least one slot */
            ring_unlock(r);
            PyBuffer_Release(&data); PyBuffer_Release(&name); PyBuffer_Release(&ctrl);
            return NULL;
        }
        struct mmsghdr *h = &r->hdr[0];
        size_t n = (size_t)data.len < (size_t)r->recv_size ? (size_t)data.len
                                                            : (size_t)r->recv_size;
        size_t head = n < r->compact ? n : r->compact;
        memcpy(r->data, data.buf, head);
        if (n > head) memcpy(r->over_data, (const char *)data.buf + head, n - head);
        memcpy(r->names, name.buf, name.len < NAME_SIZE ? (size_t)name.len : NAME_SIZE);
        memcpy(r->ctrl, ctrl.buf, ctrl.len < CTRL_SIZE ? (size_t)ctrl.len : CTRL_SIZE);
        h->msg_len = (unsigned)n;
        h->msg_hdr.msg_namelen = (socklen_t)name.len;
        h->msg_hdr.msg_controllen = (size_t)ctrl.len;
        h->msg_hdr.msg_flags = flags;
        PyObject *g; long ifx; int hif, hdr; long long dr;
        o = build_one(r, 0, NULL, 0, &g, &ifx, &hif, &dr, &hdr);
        ring_detach(r);
        ring_unlock(r);
    }
    PyBuffer_Release(&data); PyBuffer_Release(&name); PyBuffer_Release(&ctrl);
    return o;
}

static PyObject *Ring_get_summary(Ring *r, void *closure) {
    PyObject *s = r->summary ? r->summary : Py_None;
    Py_INCREF(s);
    return s;
}

static PyObject *Ring_get_slots(Ring *r, void *closure) {
    return PyLong_FromUnsignedLong(r->slots);
}

static PyMethodDef Ring_methods[] = {
    {"recv", (PyCFunction)Ring_recv, METH_VARARGS,
     "recv(fd, max_count) -> list[Datagram]: one recvmmsg(MSG_DONTWAIT) call."},
    {"read", (PyCFunction)(void (*)(void))Ring_read, METH_FASTCALL,
     "read(sock, max_count) -> (list[Datagram], summary): recv() and summary together."},
    {"_decode", (PyCFunction)Ring_decode, METH_VARARGS,
     "_decode(data, name, ctrl, flags=0) -> Datagram: decode bytes as slot 0 (tests)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Ring_getset[] = {
    {"summary", (getter)Ring_get_summary, NULL,
     "(group, interface, drops, bytes, truncated) of the last batch when every datagram "
     "had the same group, interface and drop count; else None", NULL},
    {"slots", (getter)Ring_get_slots, NULL, "messages the ring holds", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject RingType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mcastkit._speedups.Ring",
    .tp_basicsize = sizeof(Ring),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Ring(family, recv_size, slots=64): a recvmmsg ring building Datagrams.",
    .tp_new = Ring_new,
    .tp_init = (initproc)Ring_init,
    .tp_dealloc = (destructor)Ring_dealloc,
    .tp_methods = Ring_methods,
    .tp_getset = Ring_getset,
};

/* setup(Datagram, kinds): check Datagram's slot layout, take the cmsg kind table
 * [(level, type, code)]. Raises TypeError if Datagram is not the expected slots class. */
static int field_index(const char *name) {
    for (int f = 0; f < F_COUNT; f++)
        if (strcmp(name, field_names[f]) == 0) return f;
    return -1;
}

/* The slot layout of tp: every object slot of tp and its bases must be one of
 * field_names, each exactly once, inside the instance and declared by tp or a base, so
 * that writing the F_COUNT offsets fills the whole object and nothing outside it. */
static int check_layout(PyTypeObject *tp, Py_ssize_t *off) {
    if (tp->tp_itemsize != 0 || (tp->tp_flags & Py_TPFLAGS_IS_ABSTRACT)
            || tp->tp_alloc == NULL) {
        PyErr_SetString(PyExc_TypeError, "Datagram is not a plain fixed-size class");
        return -1;
    }
    for (int f = 0; f < F_COUNT; f++) {
        PyObject *descr = PyObject_GetAttrString((PyObject *)tp, field_names[f]);
        if (!descr) return -1;
        int ok = Py_IS_TYPE(descr, &PyMemberDescr_Type);
        if (ok) {
            PyMemberDescrObject *md = (PyMemberDescrObject *)descr;
            Py_ssize_t o = md->d_member->offset;
            ok = md->d_member->type == T_OBJECT_EX && !(md->d_member->flags & READONLY)
                 && PyType_IsSubtype(tp, PyDescr_TYPE(md))
                 && o >= (Py_ssize_t)sizeof(PyObject)
                 && o + (Py_ssize_t)sizeof(PyObject *) <= tp->tp_basicsize
                 && o % (Py_ssize_t)sizeof(PyObject *) == 0;
            off[f] = o;
        }
        Py_DECREF(descr);
        if (!ok) {
            PyErr_Format(PyExc_TypeError, "Datagram.%s is not a plain slot of Datagram",
                         field_names[f]);
            return -1;
        }
        for (int g = 0; g < f; g++) {
            if (off[g] == off[f]) {
                PyErr_Format(PyExc_TypeError, "Datagram.%s and .%s share a slot",
                             field_names[g], field_names[f]);
                return -1;
            }
        }
    }
    int n = 0;
    for (PyTypeObject *t = tp; t != NULL; t = t->tp_base) {
        for (PyMemberDef *m = t->tp_members; m && m->name; m++) {
            if (m->type != T_OBJECT_EX && m->type != T_OBJECT) continue;
            if (field_index(m->name) < 0) {
                PyErr_Format(PyExc_TypeError, "Datagram has a slot _speedups does not know "
                             "(%s): rebuild the accelerator", m->name);
                return -1;
            }
            n++;
        }
    }
    if (n != F_COUNT) {
        PyErr_Format(PyExc_TypeError, "Datagram has %d object slots, _speedups knows %d",
                     n, (int)F_COUNT);
        return -1;
    }
    return 0;
}

static PyObject *setup(PyObject *self, PyObject *args) {
    PyObject *tp, *table;
    if (!PyArg_ParseTuple(args, "O!O", &PyType_Type, &tp, &table)) return NULL;
    Py_ssize_t off[F_COUNT];
    if (check_layout((PyTypeObject *)tp, off) < 0) return NULL;
    /* a tuple copy: parsing an item cannot run code that shrinks or frees the table */
    PyObject *seq = PySequence_Tuple(table);
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > MAX_KINDS) { Py_DECREF(seq); PyErr_SetString(PyExc_ValueError, "too many kinds");
                         return NULL; }
    int lv[MAX_KINDS], ty[MAX_KINDS], kd[MAX_KINDS];
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(item)) {  /* PyArg_ParseTuple would raise SystemError */
            Py_DECREF(seq);
            PyErr_SetString(PyExc_TypeError, "kinds must hold (level, type, kind) tuples");
            return NULL;
        }
        if (!PyArg_ParseTuple(item, "iii", &lv[i], &ty[i], &kd[i])) {
            Py_DECREF(seq);
            return NULL;
        }
    }
    Py_DECREF(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        kinds[i].level = lv[i]; kinds[i].type = ty[i]; kinds[i].kind = kd[i];
    }
    n_kinds = (int)n;
    memcpy(field_off, off, sizeof off);
    Py_INCREF(tp);
    Py_XSETREF(dgram_type, (PyTypeObject *)tp);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ build_epbs */

/* build_epbs(out, pos, batch, start, port, ifid, ifindex, linktype, prev_drops, limit)
 *   -> (next, end, payload_bytes)
 *
 * The compiled twin of mcastkit.capture._epb.build_epbs_py, which is the reference (the
 * tests compare the bytes of both, and of the per-datagram path): writes into the bytearray
 * out from pos on (growing it, at least doubled, when they do not fit; nothing after the
 * end returned is meaningful) one pcapng Enhanced Packet Block per plain Datagram of
 * batch[start:], its frame
 * rebuilt (Ethernet to the group's multicast MAC from 02:00:00:00:00:00, or raw IP;
 * IPv4 / IPv6 from the source to the group with the datagram's TTL and TOS, ident 0, no
 * flags; UDP from its port to `port`; IPv4 header and UDP checksums), timestamp in ns.
 * Plain: an exact Datagram (the class given to setup()), with bytes data, a str source
 * and group of one family (with Ethernet: a multicast group or 255.255.255.255, whose
 * MACs are implied), int timestamp_ns >= 0, truncated
 * False, interface equal to ifindex (an int, or None), drops None or <= prev_drops, ttl
 * and tos None or 0..255, a port 0..65535, a payload that fits the IP length. It stops
 * before the first datagram that is not plain, or once `limit` bytes were written (the
 * caller writes that one by the per-datagram path, which knows drops, comments and
 * errors). Reads the Datagram slots at the offsets setup() checked; runs no Python code,
 * so nothing can change the batch while it runs (it holds the GIL throughout). Raises
 * TypeError for an out that is not a bytearray, ValueError for a bad port / linktype, a
 * negative start / limit or a pos outside out, RuntimeError before setup(); if growing
 * out fails (MemoryError, BufferError while it is exported) the blocks written so far are
 * lost to the caller (it gets no end), which keeps the blocks before pos. */
#define EPB_LT_ETHERNET 1
#define EPB_LT_RAW 101
#define EPB_FIELD(o, f) (*(PyObject **)((char *)(o) + field_off[f]))

static uint64_t epb_be64(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

/* The big-endian 16-bit words of p[0:n] (zero-padded) summed modulo 0xffff: 2^16 = 1
 * (mod 0xffff), so a 64-bit big-endian word is its four 16-bit words mod 0xffff, and
 * the carries out of the 64-bit sum (2^64 = 1) are added back. */
static unsigned epb_sum(const unsigned char *p, Py_ssize_t n) {
    uint64_t acc = 0, carry = 0, tail = 0;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = epb_be64(p + i);
        acc += w;
        carry += acc < w;
    }
    for (int k = 0; i < n; i++, k++) tail |= (uint64_t)p[i] << (56 - 8 * k);
    acc += tail;
    carry += acc < tail;
    return (unsigned)((acc % 0xFFFF + carry % 0xFFFF) % 0xFFFF);
}

static void epb_le32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}

static void epb_be16(unsigned char *p, unsigned v) {
    p[0] = (unsigned char)(v >> 8); p[1] = (unsigned char)v;
}

/* a small int slot (None: dflt) in lo..hi; -1 when it is anything else */
static long epb_small(PyObject *o, long dflt, long lo, long hi) {
    if (o == Py_None) return dflt;
    if (!PyLong_CheckExact(o)) return -1;
    int ov = 0;
    long v = PyLong_AsLongAndOverflow(o, &ov);
    if (v == -1 && PyErr_Occurred()) { PyErr_Clear(); return -1; }
    return (ov || v < lo || v > hi) ? -1 : v;
}

/* a str address (text up to '%') into addr; its family (AF_INET / AF_INET6) or 0 */
static int epb_addr(PyObject *o, unsigned char *addr) {
    if (!PyUnicode_CheckExact(o)) return 0;
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(o, &len);
    if (!s) { PyErr_Clear(); return 0; }
    char buf[INET6_ADDRSTRLEN + 1];
    Py_ssize_t k = 0;
    while (k < len && s[k] != '%') {
        if (k >= INET6_ADDRSTRLEN) return 0;
        buf[k] = s[k];
        k++;
    }
    buf[k] = '\0';
    if (inet_pton(AF_INET, buf, addr) == 1) return AF_INET;
    if (inet_pton(AF_INET6, buf, addr) == 1) return AF_INET6;
    return 0;
}

/* one-entry caches of the last source and group (strong references to the str objects:
 * the ring hands out the same str while the sender or group stays the same), so a
 * stream's addresses are parsed once; only touched with the GIL held */
static PyObject *epb_src_key = NULL, *epb_grp_key = NULL;
static unsigned char epb_src_addr[16], epb_grp_addr[16];
static int epb_src_fam = 0, epb_grp_fam = 0;

static int epb_addr_cached(PyObject *o, PyObject **key, unsigned char *cached, int *fam,
                           unsigned char *addr) {
    if (o != *key) {
        unsigned char tmp[16];
        int f = epb_addr(o, tmp);
        if (f == 0) return 0;
        Py_INCREF(o);
        Py_XSETREF(*key, o);
        memcpy(cached, tmp, 16);
        *fam = f;
    }
    memcpy(addr, cached, 16);
    return *fam;
}

static PyObject *py_build_epbs(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "build_epbs takes 10 arguments: out, pos, batch, "
                        "start, port, ifid, ifindex, linktype, prev_drops, limit");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred()) return NULL;
    if (!PyByteArray_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "out must be a bytearray");
        return NULL;
    }
    if (dgram_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "build_epbs before setup()");
        return NULL;
    }
    PyObject *out = args[0], *ifindex = args[6];
    if (pos < 0 || pos > PyByteArray_GET_SIZE(out)) {
        PyErr_SetString(PyExc_ValueError, "build_epbs: pos is outside out");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[3]);
    if (start == -1 && PyErr_Occurred()) return NULL;
    long port = PyLong_AsLong(args[4]);
    if (port == -1 && PyErr_Occurred()) return NULL;
    unsigned long ifid = PyLong_AsUnsignedLong(args[5]);
    if (ifid == (unsigned long)-1 && PyErr_Occurred()) return NULL;
    long linktype = PyLong_AsLong(args[7]);
    if (linktype == -1 && PyErr_Occurred()) return NULL;
    long long prev = PyLong_AsLongLong(args[8]);
    if (prev == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t limit = PyLong_AsSsize_t(args[9]);
    if (limit == -1 && PyErr_Occurred()) return NULL;
    if (start < 0 || limit < 0 || port < 0 || port > 65535 || ifid > UINT32_MAX
            || (linktype != EPB_LT_ETHERNET && linktype != EPB_LT_RAW)) {
        PyErr_SetString(PyExc_ValueError, "build_epbs: start and limit must be >= 0, port "
                        "0..65535, ifid a 32-bit id, linktype 1 (Ethernet) or 101 (raw)");
        return NULL;
    }
    long long want_if = 0;
    if (ifindex != Py_None) {
        want_if = PyLong_AsLongLong(ifindex);
        if (want_if == -1 && PyErr_Occurred()) return NULL;
    }
    PyObject *seq = PySequence_Fast(args[2], "batch must be a sequence");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), base = pos;
    Py_ssize_t i = start, nbytes = 0;
    int eth = linktype == EPB_LT_ETHERNET;
    for (; i < n; i++) {
        PyObject *d = PySequence_Fast_GET_ITEM(seq, i);
        if (pos - base >= limit || !Py_IS_TYPE(d, dgram_type)) break;
        PyObject *data = EPB_FIELD(d, F_DATA), *src = EPB_FIELD(d, F_SOURCE);
        PyObject *grp = EPB_FIELD(d, F_GROUP), *ifo = EPB_FIELD(d, F_IFACE);
        PyObject *tso = EPB_FIELD(d, F_TS), *drops = EPB_FIELD(d, F_DROPS);
        PyObject *ttlo = EPB_FIELD(d, F_TTL), *toso = EPB_FIELD(d, F_TOS);
        PyObject *sporto = EPB_FIELD(d, F_PORT), *trunc = EPB_FIELD(d, F_TRUNC);
        if (!data || !src || !grp || !ifo || !tso || !drops || !ttlo || !toso || !sporto
                || !trunc || trunc != Py_False || !PyBytes_CheckExact(data)
                || !PyLong_CheckExact(tso))
            break;
        if (ifindex == Py_None ? ifo != Py_None
                : (!PyLong_CheckExact(ifo) || PyLong_AsLongLong(ifo) != want_if)) {
            PyErr_Clear();
            break;
        }
        if (drops != Py_None) {
            if (!PyLong_CheckExact(drops)) break;
            int ov = 0;
            long long dv = PyLong_AsLongLongAndOverflow(drops, &ov);
            if (dv == -1 && PyErr_Occurred()) { PyErr_Clear(); break; }
            if (ov || dv > prev) break;
        }
        unsigned long long ts = PyLong_AsUnsignedLongLong(tso);
        if (ts == (unsigned long long)-1 && PyErr_Occurred()) { PyErr_Clear(); break; }
        long ttl = epb_small(ttlo, 1, 0, 255), tos = epb_small(toso, 0, 0, 255);
        long sport = epb_small(sporto, -1, 0, 65535);
        if (ttl < 0 || tos < 0 || sport < 0) break;
        unsigned char sa[16], ga[16];
        int fam = epb_addr_cached(src, &epb_src_key, epb_src_addr, &epb_src_fam, sa);
        if (fam == 0 || epb_addr_cached(grp, &epb_grp_key, epb_grp_addr, &epb_grp_fam, ga)
                != fam)
            break;
        int v4 = fam == AF_INET, alen = v4 ? 4 : 16;
        int bcast = v4 && ga[0] == 0xFF && ga[1] == 0xFF && ga[2] == 0xFF && ga[3] == 0xFF;
        if (eth && !bcast && (v4 ? (ga[0] & 0xF0) != 0xE0 : ga[0] != 0xFF))
            break;  /* a unicast destination: its MAC is not implied */
        Py_ssize_t size = PyBytes_GET_SIZE(data);
        Py_ssize_t ulen = 8 + size;
        if (ulen + (v4 ? 20 : 0) > 65535) break;
        Py_ssize_t hlen = (eth ? 14 : 0) + (v4 ? 20 : 40);
        Py_ssize_t caplen = hlen + ulen, pad = (4 - caplen % 4) % 4;
        Py_ssize_t total = 32 + caplen + pad, have = PyByteArray_GET_SIZE(out);
        if (pos + total > have && PyByteArray_Resize(
                out, pos + total > have / 2 * 3 ? pos + total : have / 2 * 3) < 0) {
            Py_DECREF(seq);
            return NULL;
        }
        unsigned char *p = (unsigned char *)PyByteArray_AS_STRING(out) + pos, *q;
        const unsigned char *pl = (const unsigned char *)PyBytes_AS_STRING(data);
        epb_le32(p, 6); epb_le32(p + 4, (uint32_t)total); epb_le32(p + 8, (uint32_t)ifid);
        epb_le32(p + 12, (uint32_t)(ts >> 32)); epb_le32(p + 16, (uint32_t)ts);
        epb_le32(p + 20, (uint32_t)caplen); epb_le32(p + 24, (uint32_t)caplen);
        q = p + 28;
        if (eth) {
            if (bcast) memset(q, 0xFF, 6);
            else if (v4) { q[0] = 0x01; q[1] = 0x00; q[2] = 0x5E; q[3] = ga[1] & 0x7F;
                           q[4] = ga[2]; q[5] = ga[3]; }
            else { q[0] = 0x33; q[1] = 0x33; memcpy(q + 2, ga + 12, 4); }
            memset(q + 6, 0, 6);
            q[6] = 0x02;
            epb_be16(q + 12, v4 ? 0x0800 : 0x86DD);
            q += 14;
        }
        unsigned addr_sum = epb_sum(sa, alen) + epb_sum(ga, alen);
        if (v4) {
            q[0] = 0x45; q[1] = (unsigned char)tos; epb_be16(q + 2, (unsigned)(20 + ulen));
            memset(q + 4, 0, 4); q[8] = (unsigned char)ttl; q[9] = 17; q[10] = q[11] = 0;
            memcpy(q + 12, sa, 4); memcpy(q + 16, ga, 4);
            unsigned r = epb_sum(q, 20);
            epb_be16(q + 10, r ? 0xFFFF - r : 0);
            q += 20;
        } else {
            uint32_t first = (6u << 28) | ((uint32_t)tos << 20);
            q[0] = (unsigned char)(first >> 24); q[1] = (unsigned char)(first >> 16);
            q[2] = (unsigned char)(first >> 8); q[3] = (unsigned char)first;
            epb_be16(q + 4, (unsigned)ulen); q[6] = 17; q[7] = (unsigned char)ttl;
            memcpy(q + 8, sa, 16); memcpy(q + 24, ga, 16);
            q += 40;
        }
        uint64_t usum = (uint64_t)addr_sum + 17 + 2 * (uint64_t)ulen + (uint64_t)sport
                        + (uint64_t)port + epb_sum(pl, size);
        unsigned r = (unsigned)(usum % 0xFFFF);
        epb_be16(q, (unsigned)sport); epb_be16(q + 2, (unsigned)port);
        epb_be16(q + 4, (unsigned)ulen); epb_be16(q + 6, r ? 0xFFFF - r : 0xFFFF);
        memcpy(q + 8, pl, (size_t)size);
        q += 8 + size;
        memset(q, 0, (size_t)pad);
        epb_le32(q + pad, (uint32_t)total);
        pos += total;
        nbytes += size;
    }
    Py_DECREF(seq);
    return Py_BuildValue("(nnn)", i, pos, nbytes);
}

/* ------------------------------------------------------------------ sendmmsg */

#define SEND_STACK 64  /* messages whose arrays live on the C stack; more: one heap block */

/* args[i] as a C int (what: for the error message); -1 with an exception on failure */
static int arg_int(PyObject *o, const char *what, int *out) {
    int ov = 0;
    long v = PyLong_AsLongAndOverflow(o, &ov);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (ov || v > INT_MAX || v < INT_MIN) {
        PyErr_Format(PyExc_OverflowError, "%s does not fit a C int", what);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* The destination, copied out of its buffer before anything else can run; 0 on success. */
static int arg_sockaddr(PyObject *o, struct sockaddr_storage *sa, socklen_t *salen) {
    Py_buffer b;
    if (PyObject_GetBuffer(o, &b, PyBUF_SIMPLE) < 0) return -1;
    sa_family_t af = AF_UNSPEC;
    *salen = 0;
    if ((size_t)b.len >= sizeof af) memcpy(&af, b.buf, sizeof af);
    if ((af == AF_INET && (size_t)b.len == sizeof(struct sockaddr_in))
            || (af == AF_INET6 && (size_t)b.len == sizeof(struct sockaddr_in6))) {
        memcpy(sa, b.buf, (size_t)b.len);  /* only these salen bytes are ever read */
        *salen = (socklen_t)b.len;
    }
    PyBuffer_Release(&b);
    if (*salen == 0) {
        PyErr_Format(PyExc_ValueError, "sockaddr must be the %zu bytes of a sockaddr_in "
                     "or the %zu of a sockaddr_in6, family included",
                     sizeof(struct sockaddr_in), sizeof(struct sockaddr_in6));
        return -1;
    }
    return 0;
}

/* What every send function takes: (fd, payload or payloads, sockaddr, flags). */
typedef struct {
    int fd, flags;
    socklen_t salen;
    struct sockaddr_storage sa;
} SendArgs;

/* Check and convert the four arguments of send function `name` (args[1], the payload,
 * is the caller's to read); 0 on success, -1 with TypeError / OverflowError /
 * ValueError, or OSError(EBADF) for a negative fd (a closed socket's fileno()). */
static int send_args(const char *name, PyObject *const *args, Py_ssize_t nargs,
                     SendArgs *a) {
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "%s() takes 4 arguments (%zd given)", name, nargs);
        return -1;
    }
    if (arg_int(args[0], "fd", &a->fd) < 0 || arg_int(args[3], "flags", &a->flags) < 0
            || arg_sockaddr(args[2], &a->sa, &a->salen) < 0)
        return -1;
    if (a->fd < 0) {
        errno = EBADF;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

/* sendto(fd, payload, sockaddr, flags) -> int: one sendto(2) to a destination packed once
 * by the caller (no address parsing per datagram), EINTR retried after the handlers. */
static PyObject *py_sendto(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    SendArgs a;
    if (send_args("sendto", args, nargs, &a) < 0) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0) return NULL;
    ssize_t n;
    int err;
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        n = sendto(a.fd, view.buf, (size_t)view.len, a.flags, (struct sockaddr *)&a.sa,
                   a.salen);
        err = errno;
        Py_END_ALLOW_THREADS
        if (n >= 0 || err != EINTR) break;
        if (PyErr_CheckSignals() < 0) break;
    }
    PyBuffer_Release(&view);
    if (n >= 0) return PyLong_FromSsize_t(n);
    if (!PyErr_Occurred()) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
    }
    return NULL;
}

/* sendmmsg(fd, payloads, sockaddr, flags) -> int
 *
 * One sendmmsg(2) call sending payloads[0:min(len, MAX_VLEN)] to the address in
 * sockaddr (the bytes of a sockaddr_in or sockaddr_in6, exactly). Every payload is held
 * for the whole call, and released on every path: a bytes object (immutable) by a
 * reference, any other buffer by PyObject_GetBuffer(PyBUF_SIMPLE), which pins it (a
 * bytearray cannot be resized or freed by another thread while the kernel reads it). A
 * payload that is the same object as the one before it shares that one's hold and iovec
 * (a batch of one payload repeated costs one hold). The GIL is released only around the
 * syscall, which touches no Python object. Returns how many the kernel took (fewer than
 * given: it stopped early; the caller sends the rest with another call, which reports
 * the error). EINTR is retried after running signal handlers (PEP 475). Raises OSError
 * (BlockingIOError for EAGAIN, EBADF for a negative fd) when nothing was sent, TypeError
 * for a non-buffer payload, ValueError for a bad sockaddr, OverflowError for an fd or
 * flags outside a C int. */
enum { HOLD_NONE, HOLD_REF, HOLD_VIEW };

static PyObject *py_sendmmsg(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    SendArgs a;
    if (send_args("sendmmsg", args, nargs, &a) < 0) return NULL;
    PyObject *seq = PySequence_Fast(args[1], "payloads must be a sequence of buffers");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > MAX_VLEN) n = MAX_VLEN;  /* the kernel's UIO_MAXIOV; the caller loops */
    if (n == 0) {
        Py_DECREF(seq);
        return PyLong_FromLong(0);
    }
    struct mmsghdr hdr_s[SEND_STACK];
    struct iovec iov_s[SEND_STACK];
    Py_buffer view_s[SEND_STACK];
    unsigned char hold_s[SEND_STACK];
    struct mmsghdr *hdr = hdr_s;
    struct iovec *iov = iov_s;
    Py_buffer *view = view_s;
    unsigned char *hold = hold_s;
    void *block = NULL;
    if (n > SEND_STACK) {
        size_t each = sizeof *hdr + sizeof *iov + sizeof *view + sizeof *hold;
        block = PyMem_Malloc((size_t)n * each);
        if (!block) { Py_DECREF(seq); return PyErr_NoMemory(); }
        hdr = block;  /* every member type is pointer-aligned, sizes multiples of it */
        iov = (struct iovec *)(hdr + n);
        view = (Py_buffer *)(iov + n);
        hold = (unsigned char *)(view + n);
    }
    Py_ssize_t held = 0;  /* slots filled so far: their holds are released below */
    PyObject *result = NULL;
    PyObject *prev = NULL;  /* the last payload held (alive while held: its hold) */
    struct iovec *prev_iov = NULL;
    for (; held < n; held++) {
        /* a buffer getter could run code that shrinks a list: re-check, hold the item */
        if (held >= PySequence_Fast_GET_SIZE(seq)) {
            PyErr_SetString(PyExc_RuntimeError, "payloads changed size during sendmmsg");
            goto done;
        }
        PyObject *item = PySequence_Fast_GET_ITEM(seq, held);
        struct msghdr *m = &hdr[held].msg_hdr;
        m->msg_name = &a.sa;
        m->msg_namelen = a.salen;
        m->msg_iovlen = 1;
        m->msg_control = NULL;
        m->msg_controllen = 0;
        m->msg_flags = 0;
        hdr[held].msg_len = 0;
        if (item == prev) {  /* the same object again: its hold and iovec serve */
            hold[held] = HOLD_NONE;
            m->msg_iov = prev_iov;
            continue;
        }
        if (PyBytes_CheckExact(item)) {  /* immutable: a reference keeps it as it is */
            Py_INCREF(item);
            hold[held] = HOLD_REF;
            view[held].obj = item;
            iov[held].iov_base = PyBytes_AS_STRING(item);
            iov[held].iov_len = (size_t)PyBytes_GET_SIZE(item);
        } else {
            Py_INCREF(item);
            if (PyObject_GetBuffer(item, &view[held], PyBUF_SIMPLE) < 0) {
                if (PyErr_ExceptionMatches(PyExc_TypeError)) {
                    PyErr_Format(PyExc_TypeError, "payload %zd (%.100s) is not a "
                                 "bytes-like object; send bytes, bytearray or memoryview",
                                 held, Py_TYPE(item)->tp_name);
                }
                Py_DECREF(item);
                goto done;
            }
            Py_DECREF(item);  /* the view holds its own reference */
            hold[held] = HOLD_VIEW;
            iov[held].iov_base = view[held].buf;
            iov[held].iov_len = (size_t)view[held].len;
        }
        m->msg_iov = &iov[held];
        prev = item;
        prev_iov = &iov[held];
    }
    int got, err;
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        got = sendmmsg(a.fd, hdr, (unsigned)n, a.flags);
        err = errno;
        Py_END_ALLOW_THREADS
        if (got >= 0 || err != EINTR) break;
        if (PyErr_CheckSignals() < 0) break;  /* a handler raised: got stays -1 */
    }
    if (got >= 0) {
        result = PyLong_FromLong(got);
    } else if (!PyErr_Occurred()) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
    }
done:
    for (Py_ssize_t i = 0; i < held; i++) {
        if (hold[i] == HOLD_VIEW) PyBuffer_Release(&view[i]);
        else if (hold[i] == HOLD_REF) Py_DECREF(view[i].obj);
    }
    PyMem_Free(block);
    Py_DECREF(seq);
    return result;
}


/* ---- capture: udp_rows, the replay decoder's fast path (mcastkit.capture._fastpath) ----
 * udp_rows(batch, general, outgoing, linktypes, name4, name6) -> (rows, bad_checksums)
 * The C form of capture._fastpath.decode_batch's loop, frame for frame the same: a record
 * (linktype, ts_ns, buffer, offset, caplen, ...) whose frame is Ethernet / Linux cooked
 * v1, v2 / raw IP + IPv4 without options or IPv6 without extension headers + UDP to a
 * multicast or broadcast address, not a fragment, becomes the row (ts_ns, source, sport,
 * group, dport, payload, ttl, version, checksum_ok); any other record is handed to
 * general(record). name4(int) / name6(bytes) give address texts (the Python caches);
 * the last source and group are remembered within one call. linktypes (a dict) counts
 * records per link type. Reads only inside [offset, offset + caplen) of a bytes buffer. */

static unsigned be16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* RFC 1071 over pseudo + the UDP header (its checksum field as zero) + the payload. */
static int udp_sum_ok(uint64_t pseudo, const unsigned char *u, Py_ssize_t ulen, unsigned csum) {
    uint64_t s = pseudo + be16(u) + be16(u + 2) + be16(u + 4);
    Py_ssize_t i = 8;
    for (; i + 1 < ulen; i += 2) s += be16(u + i);
    if (i < ulen) s += (uint64_t)u[i] << 8;
    while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
    unsigned c = ~(unsigned)s & 0xFFFF;
    return (c ? c : 0xFFFF) == csum;
}

typedef struct {
    PyObject *name4, *name6;
    uint32_t v4[2];
    unsigned char v6[2][16];
    PyObject *text4[2], *text6[2];  /* [0] last source, [1] last group (owned) */
} AddrTexts;

static PyObject *text_v4(AddrTexts *t, int which, uint32_t a) {
    if (t->text4[which] && t->v4[which] == a) { Py_INCREF(t->text4[which]); return t->text4[which]; }
    PyObject *n = PyLong_FromUnsignedLong(a);
    if (!n) return NULL;
    PyObject *r = PyObject_CallOneArg(t->name4, n);
    Py_DECREF(n);
    if (!r) return NULL;
    Py_XSETREF(t->text4[which], Py_NewRef(r));
    t->v4[which] = a;
    return r;
}

static PyObject *text_v6(AddrTexts *t, int which, const unsigned char *a) {
    if (t->text6[which] && memcmp(t->v6[which], a, 16) == 0) {
        Py_INCREF(t->text6[which]);
        return t->text6[which];
    }
    PyObject *b = PyBytes_FromStringAndSize((const char *)a, 16);
    if (!b) return NULL;
    PyObject *r = PyObject_CallOneArg(t->name6, b);
    Py_DECREF(b);
    if (!r) return NULL;
    Py_XSETREF(t->text6[which], Py_NewRef(r));
    memcpy(t->v6[which], a, 16);
    return r;
}

static PyObject *make_row(PyObject *ts, PyObject *src, unsigned sport, PyObject *grp,
                          unsigned dport, const unsigned char *payload, Py_ssize_t len,
                          unsigned ttl, int version, PyObject *ok) {
    PyObject *row = PyTuple_New(9);
    if (!row) { Py_DECREF(src); Py_DECREF(grp); return NULL; }
    PyTuple_SET_ITEM(row, 0, Py_NewRef(ts));
    PyTuple_SET_ITEM(row, 1, src);
    PyTuple_SET_ITEM(row, 3, grp);
    PyTuple_SET_ITEM(row, 7, PyLong_FromLong(version));
    PyTuple_SET_ITEM(row, 8, Py_NewRef(ok));
    PyObject *a = PyLong_FromUnsignedLong(sport), *b = PyLong_FromUnsignedLong(dport),
             *c = PyBytes_FromStringAndSize((const char *)payload, len),
             *d = PyLong_FromUnsignedLong(ttl);
    PyTuple_SET_ITEM(row, 2, a);
    PyTuple_SET_ITEM(row, 4, b);
    PyTuple_SET_ITEM(row, 5, c);
    PyTuple_SET_ITEM(row, 6, d);
    if (!a || !b || !c || !d || !PyTuple_GET_ITEM(row, 7)) { Py_DECREF(row); return NULL; }
    /* ints, texts, bytes, None / bool: nothing the collector must follow (CPython untracks
     * such tuples itself, later, at a collection); a replay holds a million of them */
    if (PyUnicode_CheckExact(src) && PyUnicode_CheckExact(grp)
            && (ts == Py_None || PyLong_CheckExact(ts)))
        PyObject_GC_UnTrack(row);
    return row;
}

/* The row of a common-shape frame (new reference), NULL without an error for any other
 * frame, NULL with an error when Python raised. *bad is set for a failed checksum. */
static PyObject *fast_row(AddrTexts *t, long lt, PyObject *ts, const unsigned char *f,
                          Py_ssize_t caplen, int outgoing, int *bad) {
    Py_ssize_t hl;
    unsigned et;
    int bcast = 0;
    switch (lt) {
    case 1: hl = 14; break;
    case 113: hl = 16; break;
    case 276: hl = 20; break;
    case 101: case 228: case 229: hl = 0; break;
    default: return NULL;
    }
    if (caplen < hl + 28) return NULL;
    const unsigned char *ip = f + hl;
    if (lt == 1) {
        et = be16(f + 12);
        bcast = memcmp(f, "\xff\xff\xff\xff\xff\xff", 6) == 0;
    } else if (hl == 0) {
        et = ip[0] >> 4 == 4 ? 0x0800 : 0x86DD;
    } else {
        unsigned pt = lt == 113 ? be16(f) : f[10];
        et = lt == 113 ? be16(f + 14) : be16(f);
        bcast = pt == 1;
        if (pt == 4 && !outgoing) et = 0;
    }
    if (et == 0x0800) {
        unsigned total = be16(ip + 2), frag = be16(ip + 6);
        uint32_t src = be32(ip + 12), dst = be32(ip + 16);
        const unsigned char *u = ip + 20;
        unsigned ulen = be16(u + 4), csum = be16(u + 6);
        if (!(ip[0] == 0x45 && ip[9] == 17 && !(frag & 0x3FFF) && ulen >= 8
              && ulen + 20 <= total && hl + (Py_ssize_t)total <= caplen
              && (dst >> 28 == 14 || dst == 0xFFFFFFFFu || bcast)))
            return NULL;
        PyObject *ok = Py_None;
        if (csum) {
            uint64_t pseudo = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF)
                              + 17 + ulen;
            ok = udp_sum_ok(pseudo, u, ulen, csum) ? Py_True : Py_False;
            *bad = ok == Py_False;
        }
        PyObject *s = text_v4(t, 0, src);
        if (!s) return NULL;
        PyObject *g = text_v4(t, 1, dst);
        if (!g) { Py_DECREF(s); return NULL; }
        return make_row(ts, s, be16(u), g, be16(u + 2), u + 8, (Py_ssize_t)ulen - 8, ip[8],
                        4, ok);
    }
    if (et == 0x86DD && caplen >= hl + 48) {
        unsigned plen = be16(ip + 4);
        const unsigned char *u = ip + 40;
        unsigned ulen = be16(u + 4), csum = be16(u + 6);
        if (!(ip[0] >> 4 == 6 && ip[6] == 17 && ulen >= 8 && ulen <= plen
              && hl + 40 + (Py_ssize_t)plen <= caplen && (ip[24] == 0xFF || bcast)))
            return NULL;
        int good = 0;
        if (csum) {
            uint64_t pseudo = 17 + ulen;
            for (int i = 8; i < 40; i += 2) pseudo += be16(ip + i);
            good = udp_sum_ok(pseudo, u, ulen, csum);
        }
        *bad = !good;
        PyObject *s = text_v6(t, 0, ip + 8);
        if (!s) return NULL;
        PyObject *g = text_v6(t, 1, ip + 24);
        if (!g) { Py_DECREF(s); return NULL; }
        return make_row(ts, s, be16(u), g, be16(u + 2), u + 8, (Py_ssize_t)ulen - 8, ip[7],
                        6, good ? Py_True : Py_False);
    }
    return NULL;
}

static int count_run(PyObject *linktypes, long lt, Py_ssize_t run) {
    if (!run) return 0;
    PyObject *key = PyLong_FromLong(lt);
    if (!key) return -1;
    PyObject *old = PyDict_GetItemWithError(linktypes, key);  /* borrowed */
    long long was = 0;
    if (old) {
        was = PyLong_AsLongLong(old);
        if (was == -1 && PyErr_Occurred()) { Py_DECREF(key); return -1; }
    } else if (PyErr_Occurred()) {
        Py_DECREF(key);
        return -1;
    }
    PyObject *now = PyLong_FromLongLong(was + run);
    int rc = now ? PyDict_SetItem(linktypes, key, now) : -1;
    Py_XDECREF(now);
    Py_DECREF(key);
    return rc;
}

static PyObject *py_udp_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "udp_rows() takes 6 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *batch = args[0], *general = args[1], *linktypes = args[3];
    if (!PyList_Check(batch) || !PyDict_Check(linktypes)) {
        PyErr_SetString(PyExc_TypeError, "udp_rows(list, callable, bool, dict, callable, "
                        "callable)");
        return NULL;
    }
    int outgoing = PyObject_IsTrue(args[2]);
    if (outgoing < 0) return NULL;
    AddrTexts t = {args[4], args[5], {0, 0}, {{0}}, {NULL, NULL}, {NULL, NULL}};
    PyObject *rows = PyList_New(0);
    if (!rows) return NULL;
    long bad = 0, cur = -1;
    Py_ssize_t run = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(batch); i++) {
        PyObject *rec = PyList_GET_ITEM(batch, i);
        Py_INCREF(rec);  /* general() could change the list */
        PyObject *row = NULL;
        int bad_one = 0;
        if (!PyTuple_Check(rec) || PyTuple_GET_SIZE(rec) < 5) {
            PyErr_SetString(PyExc_TypeError, "a record is a tuple (linktype, ts_ns, buffer, "
                            "offset, caplen, ...)");
            Py_DECREF(rec);
            goto fail;
        }
        long lt = PyLong_AsLong(PyTuple_GET_ITEM(rec, 0));
        Py_ssize_t at = PyLong_AsSsize_t(PyTuple_GET_ITEM(rec, 3));
        Py_ssize_t caplen = PyLong_AsSsize_t(PyTuple_GET_ITEM(rec, 4));
        if (PyErr_Occurred()) { Py_DECREF(rec); goto fail; }
        if (lt != cur) {
            if (count_run(linktypes, cur, run) < 0) { Py_DECREF(rec); goto fail; }
            cur = lt;
            run = 0;
        }
        run++;
        PyObject *buf = PyTuple_GET_ITEM(rec, 2);
        if (PyBytes_Check(buf) && at >= 0 && caplen >= 0
                && caplen <= PyBytes_GET_SIZE(buf) - at) {
            row = fast_row(&t, lt, PyTuple_GET_ITEM(rec, 1),
                           (const unsigned char *)PyBytes_AS_STRING(buf) + at, caplen,
                           outgoing, &bad_one);
            if (!row && PyErr_Occurred()) { Py_DECREF(rec); goto fail; }
        }
        if (!row) {
            bad_one = 0;
            row = PyObject_CallOneArg(general, rec);
            if (!row) { Py_DECREF(rec); goto fail; }
            if (row == Py_None) { Py_DECREF(row); Py_DECREF(rec); continue; }
            bad_one = PyTuple_Check(row) && PyTuple_GET_SIZE(row) > 8
                      && PyTuple_GET_ITEM(row, 8) == Py_False;
        }
        Py_DECREF(rec);
        bad += bad_one;
        int rc = PyList_Append(rows, row);
        Py_DECREF(row);
        if (rc < 0) goto fail;
    }
    if (count_run(linktypes, cur, run) < 0) goto fail;
    for (int k = 0; k < 2; k++) { Py_XDECREF(t.text4[k]); Py_XDECREF(t.text6[k]); }
    return Py_BuildValue("(Nl)", rows, bad);
fail:
    for (int k = 0; k < 2; k++) { Py_XDECREF(t.text4[k]); Py_XDECREF(t.text6[k]); }
    Py_DECREF(rows);
    return NULL;
}

static PyMethodDef module_methods[] = {
    {"setup", setup, METH_VARARGS, "setup(Datagram, [(level, type, kind_code)])"},
    {"build_epbs", (PyCFunction)(void (*)(void))py_build_epbs, METH_FASTCALL,
     "build_epbs(out, pos, batch, start, port, ifid, ifindex, linktype, prev_drops, limit)"
     " -> (next, end, payload_bytes): pcapng packet blocks for a received batch."},
    {"sendmmsg", (PyCFunction)(void (*)(void))py_sendmmsg, METH_FASTCALL,
     "sendmmsg(fd, payloads, sockaddr, flags) -> int: one sendmmsg(2) call, no copy."},
    {"sendto", (PyCFunction)(void (*)(void))py_sendto, METH_FASTCALL,
     "sendto(fd, payload, sockaddr, flags) -> int: one sendto(2) to a packed address."},
    {"udp_rows", (PyCFunction)(void (*)(void))py_udp_rows, METH_FASTCALL,
     "udp_rows(batch, general, outgoing, linktypes, name4, name6) -> (rows, bad_checksums)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "mcastkit._speedups",
    "Optional compiled recvmmsg ring, sendmmsg and sendto for mcastkit (see mcastkit._io).", -1, module_methods,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    if (PyType_Ready(&RingType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (!m) return NULL;
    Py_INCREF(&RingType);
    if (PyModule_AddObject(m, "Ring", (PyObject *)&RingType) < 0) {
        Py_DECREF(&RingType);
        Py_DECREF(m);
        return NULL;
    }
    if (!scratch_key_ok && pthread_key_create(&scratch_key, scratch_destroy) == 0)
        scratch_key_ok = 1;  /* without it every read gets a private scratch */
    if (PyModule_AddIntConstant(m, "ABI", 2) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
