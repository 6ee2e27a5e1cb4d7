/* mcastkit._speedups: optional compiled accelerator for MulticastSocket's receive calls
 * and the send fast paths.
 *
 * Owns: one recvmmsg(2) ring per receiver (made on the first read, grown with the traffic,
 * reused) and the building of mcastkit.Datagram objects (payload, source, metadata from
 * the control messages) in C. mcastkit._io._c.CReader wraps it; mcastkit._io keeps the
 * pure-Python and ctypes paths, which give identical Datagrams (tests/batch checks this).
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
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define NAME_SIZE 32
#define CTRL_SIZE 256
#define MAX_VLEN 1024
/* The ring is sized to the traffic: it starts at RING_START slots (made on the first
 * read, not before) and doubles when a read fills it, up to RING_BYTES of buffer (each slot
 * holds recv_size bytes: a datagram is never cut to fit) and MAX_VLEN slots. A slot is two
 * pieces: COMPACT bytes in one small block (all that datagrams of a usual MTU touch) and
 * the rest of recv_size in an overflow block that stays untouched, so never resident,
 * until a larger datagram comes. One recv() call goes round the ring as often as it must
 * to take max_count datagrams, but stops once BATCH_BYTES of payload were taken: a caller
 * that frees a batch frees at most that much at once, which the allocator keeps for the
 * next batch instead of returning it to the kernel (no page faults per datagram, 64 KiB
 * ones included). */
#define RING_START 8
#define COMPACT 2048
#define RING_BYTES (1 << 20)
#define BATCH_BYTES (128 << 10)
#define DIRECT_MIN 4096  /* datagrams this long are read straight into their bytes */
#define DIRECT_MAX 16
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

typedef struct {
    PyObject_HEAD
    int family;
    Py_ssize_t recv_size;
    unsigned slots, want_slots;
    size_t compact, over;  /* a slot's bytes in the compact and in the overflow block */
    char *over_data;
    unsigned last_max;  /* longest datagram of the last read (sizes the next one) */
    int pend_err;       /* an errno met after datagrams were taken: raised next call */
    char *data, *names, *ctrl;
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

static void ring_free_bufs(Ring *r) {
    PyMem_Free(r->data); PyMem_Free(r->over_data); PyMem_Free(r->names);
    PyMem_Free(r->ctrl); PyMem_Free(r->iov); PyMem_Free(r->hdr);
    r->data = r->over_data = r->names = r->ctrl = NULL; r->iov = NULL; r->hdr = NULL;
    r->slots = 0;
}

static int ring_alloc(Ring *r, unsigned slots) {
    unsigned cap = (unsigned)(RING_BYTES / r->recv_size);
    if (cap < 1) cap = 1;
    if (slots > MAX_VLEN) slots = MAX_VLEN;
    if (slots > cap) slots = cap;
    if (slots < 1) slots = 1;
    if (slots <= r->slots) return 0;
    ring_free_bufs(r);
    r->compact = (size_t)r->recv_size < COMPACT ? (size_t)r->recv_size : COMPACT;
    r->over = (size_t)r->recv_size - r->compact;
    r->data = PyMem_Malloc((size_t)slots * r->compact);
    r->over_data = r->over ? PyMem_Malloc((size_t)slots * r->over) : NULL;
    r->names = PyMem_Calloc(slots, NAME_SIZE);
    r->ctrl = PyMem_Calloc(slots, CTRL_SIZE);
    r->iov = PyMem_Calloc(2 * (size_t)slots, sizeof(struct iovec));
    r->hdr = PyMem_Calloc(slots, sizeof(struct mmsghdr));
    if (!r->data || (r->over && !r->over_data) || !r->names || !r->ctrl || !r->iov
            || !r->hdr) {
        ring_free_bufs(r);
        PyErr_NoMemory();
        return -1;
    }
    r->slots = slots;
    return 0;
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
    ring_free_bufs(r);  /* buffers are made by the first read (lazily, sized to need) */
    r->family = family;
    r->recv_size = recv_size;
    r->want_slots = (unsigned)slots;
    r->last_max = 0;
    r->pend_err = 0;
    ring_unlock(r);
    return 0;
}

static void Ring_dealloc(Ring *r) {
    ring_free_bufs(r);
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

#define SET(o, f, v) (*(PyObject **)((char *)(o) + field_off[f]) = (v))
#define CMSG_HDR_SIZE (sizeof(size_t) + 2 * sizeof(int))
#define ALIGN_UP(n) (((n) + sizeof(size_t) - 1) & ~(sizeof(size_t) - 1))

/* Build one Datagram from slot i; returns a new reference or NULL. */
static PyObject *build_one(Ring *r, unsigned i, PyObject *payload, PyObject **grp_out,
                           long *if_out, int *has_if, long long *dr_out, int *has_dr) {
    /* payload: the datagram's bytes when the kernel wrote straight into them (a
     * reference this function takes over), or NULL to copy them out of slot i */
    struct msghdr *m = &r->hdr[i].msg_hdr;
    Py_ssize_t len = (Py_ssize_t)r->hdr[i].msg_len;
    if (len > r->recv_size) len = r->recv_size;
    PyObject *o = dgram_type->tp_alloc(dgram_type, 0);
    if (!o) { Py_XDECREF(payload); return NULL; }
    PyObject *data = payload;
    if (data != NULL) {
        if (_PyBytes_Resize(&data, len) < 0) { Py_DECREF(o); return NULL; }
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

/* One recvmmsg(MSG_DONTWAIT) of up to `want` into the ring's slots, or straight into the
 * bytes objects `direct` (recv_size each) when given; <0 with errno on failure. */
static int ring_read(Ring *r, int fd, unsigned want, PyObject **direct) {
    for (unsigned i = 0; i < want; i++) {
        struct msghdr *m = &r->hdr[i].msg_hdr;
        struct iovec *v = &r->iov[2 * (size_t)i];
        if (direct) {
            v[0].iov_base = PyBytes_AS_STRING(direct[i]);
            v[0].iov_len = (size_t)r->recv_size;
            m->msg_iovlen = 1;
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

static PyObject *ring_recv_locked(Ring *r, int fd, unsigned max_count) {
    if (r->recv_size < 1) {  /* Ring.__new__ without __init__: no buffers, no size */
        PyErr_SetString(PyExc_RuntimeError, "Ring.__init__() was not called");
        return NULL;
    }
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
    PyObject *g0 = NULL; long if0 = 0; int hif0 = 0; long long dr0 = 0; int hdr0 = 0;
    while (total < max_count) {
        unsigned want = max_count - total < r->slots ? max_count - total : r->slots;
        if (r->last_max > 0) {  /* keep the batch's payload near BATCH_BYTES */
            long long room = (long long)BATCH_BYTES - nbytes;
            unsigned fit = room <= (long long)r->last_max ? 1 : (unsigned)(room / r->last_max);
            if (fit < want) want = fit;
        }
        /* big datagrams: the kernel writes straight into the bytes objects (one copy,
         * as recvfrom does), a few at a time */
        PyObject *direct[DIRECT_MAX];
        int use_direct = r->last_max >= DIRECT_MIN;
        if (use_direct) {
            unsigned fit = (unsigned)(BATCH_BYTES / r->recv_size);
            if (fit < 1) fit = 1;
            if (fit > DIRECT_MAX) fit = DIRECT_MAX;
            if (want > fit) want = fit;
            for (unsigned i = 0; i < want; i++) {
                direct[i] = PyBytes_FromStringAndSize(NULL, r->recv_size);
                if (!direct[i]) {
                    while (i > 0) Py_DECREF(direct[--i]);
                    Py_DECREF(out);
                    return NULL;
                }
            }
        }
        int got = ring_read(r, fd, want, use_direct ? direct : NULL);
        if (use_direct)  /* the slots nothing was read into */
            for (unsigned i = got < 0 ? 0 : (unsigned)got; i < want; i++) Py_DECREF(direct[i]);
        if (got < 0) {
            if (total == 0) { Py_DECREF(out); return PyErr_SetFromErrno(PyExc_OSError); }
            if (errno != EAGAIN && errno != EWOULDBLOCK) r->pend_err = errno;
            break;
        }
        unsigned longest = 0;
        for (int i = 0; i < got; i++) {
            PyObject *g; long ifx = 0; int hif; long long dr = 0; int hdr;
            PyObject *o = build_one(r, (unsigned)i, use_direct ? direct[i] : NULL, &g, &ifx,
                                    &hif, &dr, &hdr);
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
        if ((unsigned)got < want || got == 0) break;  /* the queue is empty (for now) */
        if (nbytes >= BATCH_BYTES) break;
        if ((unsigned)got == r->slots && total < max_count && r->slots < r->want_slots
                && ring_alloc(r, r->slots * 2) < 0) {
            PyErr_Clear();  /* no memory to grow: go on with the ring we have */
        }
    }
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
        if (r->slots == 0 && ring_alloc(r, 1) < 0) {
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
        o = build_one(r, 0, NULL, &g, &ifx, &hif, &dr, &hdr);
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

/* ------------------------------------------------------------------ sendmmsg */

#define SEND_STACK 64  /* messages whose arrays live on the C stack; more: one heap block */

/* sendmmsg(fd, payloads, sockaddr, flags) -> int
 *
 * One sendmmsg(2) call sending payloads[0:min(len, MAX_VLEN)] to the address in
 * sockaddr (the bytes of a sockaddr_in or sockaddr_in6, exactly). Each payload is
 * pinned with PyObject_GetBuffer(PyBUF_SIMPLE) for the whole call (so a bytearray cannot
 * be resized or freed by another thread while the kernel reads it) and released on every
 * path; the GIL is released only around the syscall, which touches no Python object.
 * Returns how many the kernel took (fewer than given: it stopped early; the caller sends
 * the rest with another call, which reports the error). EINTR is retried after running
 * signal handlers (PEP 475). Raises OSError (BlockingIOError for EAGAIN, EBADF for a
 * negative fd) when nothing was sent, TypeError for a non-buffer payload, ValueError
 * for a bad sockaddr, OverflowError for an fd or flags outside a C int. */
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
        memset(sa, 0, sizeof *sa);
        memcpy(sa, b.buf, (size_t)b.len);
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

/* sendto(fd, payload, sockaddr, flags) -> int: one sendto(2) to a destination packed once
 * by the caller (no address parsing per datagram), EINTR retried after the handlers. */
static PyObject *py_sendto(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "sendto() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    int fd, flags;
    struct sockaddr_storage sa;
    socklen_t salen;
    if (arg_int(args[0], "fd", &fd) < 0 || arg_int(args[3], "flags", &flags) < 0
            || arg_sockaddr(args[2], &sa, &salen) < 0)
        return NULL;
    if (fd < 0) {
        errno = EBADF;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0) return NULL;
    ssize_t n;
    int err;
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        n = sendto(fd, view.buf, (size_t)view.len, flags, (struct sockaddr *)&sa, salen);
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

static PyObject *py_sendmmsg(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "sendmmsg() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    int fd, flags;
    struct sockaddr_storage sa;
    socklen_t salen;
    if (arg_int(args[0], "fd", &fd) < 0 || arg_int(args[3], "flags", &flags) < 0
            || arg_sockaddr(args[2], &sa, &salen) < 0)
        return NULL;
    if (fd < 0) {
        errno = EBADF;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
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
    struct mmsghdr *hdr = hdr_s;
    struct iovec *iov = iov_s;
    Py_buffer *view = view_s;
    void *block = NULL;
    if (n > SEND_STACK) {
        size_t each = sizeof *hdr + sizeof *iov + sizeof *view;
        block = PyMem_Malloc((size_t)n * each);
        if (!block) { Py_DECREF(seq); return PyErr_NoMemory(); }
        hdr = block;  /* every member type is pointer-aligned, sizes multiples of it */
        iov = (struct iovec *)(hdr + n);
        view = (Py_buffer *)(iov + n);
    }
    Py_ssize_t held = 0;  /* views acquired so far: released on every path below */
    PyObject *result = NULL;
    for (; held < n; held++) {
        /* a buffer getter could run code that shrinks a list: re-check, hold the item */
        if (held >= PySequence_Fast_GET_SIZE(seq)) {
            PyErr_SetString(PyExc_RuntimeError, "payloads changed size during sendmmsg");
            goto done;
        }
        PyObject *item = PySequence_Fast_GET_ITEM(seq, held);
        Py_INCREF(item);
        if (PyObject_GetBuffer(item, &view[held], PyBUF_SIMPLE) < 0) {
            if (PyErr_ExceptionMatches(PyExc_TypeError)) {
                PyErr_Format(PyExc_TypeError, "payload %zd (%.100s) is not a bytes-like "
                             "object; send bytes, bytearray or memoryview",
                             held, Py_TYPE(item)->tp_name);
            }
            Py_DECREF(item);
            goto done;
        }
        Py_DECREF(item);  /* the view holds its own reference */
        iov[held].iov_base = view[held].buf;
        iov[held].iov_len = (size_t)view[held].len;
        memset(&hdr[held], 0, sizeof hdr[held]);
        hdr[held].msg_hdr.msg_name = &sa;
        hdr[held].msg_hdr.msg_namelen = salen;
        hdr[held].msg_hdr.msg_iov = &iov[held];
        hdr[held].msg_hdr.msg_iovlen = 1;
    }
    int got, err;
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        got = sendmmsg(fd, hdr, (unsigned)n, flags);
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
    for (Py_ssize_t i = 0; i < held; i++) PyBuffer_Release(&view[i]);
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
    if (PyModule_AddIntConstant(m, "ABI", 2) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
