/* The compiled core of the symbolic pickle walker (modelscan_lite/formats/pickle_vm.py).
 *
 * PickleWalker._loop hands this core its buffer and state (the symbolic stack, the mark
 * stack, the dense memo list) and the core runs the *data* opcodes: literal pushes, memo
 * reads and writes, MARK, the empty containers, tuples and the SETITEM(S)/APPEND(S)/ADDITEMS
 * batches that fill them. It builds exactly the values the Python loop builds (the same
 * `Seq`/`Dct` instances with the same slot values, the same str/int/float/bytes objects) and
 * stops, *before* touching any state, at the first opcode it does not run or whose effect
 * it cannot reproduce exactly: imports, calls, BUILD, FRAME, STOP, text opcodes, a batch that
 * would reach the expansion budget or feed a tensor record, an argument that runs past the
 * buffer, an error of any kind. The Python loop then runs that opcode, so every fact, anomaly,
 * budget and error message comes from the one Python definition.
 *
 * run(buf, pos, limit, stack, marks, memo_list, memo_spill, exp_limit, trees) -> (ops, pos):
 * runs opcodes from `pos` while the next one starts before `limit` (the Python loop's
 * periodic checkpoint: buffer end, frame end, 64 Ki opcodes), and returns how many it ran
 * and where it stopped. It never raises for anything in the stream; only MemoryError.
 *
 * configure(Dct, Seq, Call, container_cap, keep_bytes, tree_cap, getsizeof, fixed_sizes) must
 * be called once first: the core writes the classes' __slots__ through their member
 * descriptors' offsets.
 *
 * sizes(values, start) is Memo.nbytes's sum of sys.getsizeof over the memo's new entries.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#ifndef MSL_SOURCE_DIGEST
#define MSL_SOURCE_DIGEST ""
#endif

typedef struct {
    PyTypeObject *dct;  /* pickle_vm.Dct */
    PyTypeObject *seq;  /* pickle_vm.Seq */
    PyTypeObject *call; /* pickle_vm.Call */
    Py_ssize_t dct_dict, dct_parts, dct_total, dct_tree;
    Py_ssize_t seq_items, seq_kind, seq_total, seq_tree;
    Py_ssize_t container_cap, keep_bytes;
    long long tree_cap;
    PyObject *kind_list, *kind_set; /* "list", "set" */
    PyObject *zero;
    PyObject *getsizeof;   /* sys.getsizeof */
    PyObject *fixed_sizes; /* {type: getsizeof of every instance, or (base, per item)} */
    int ready;
} Core;

static Core core;

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

static int
slot_offset(PyTypeObject *type, const char *name, Py_ssize_t *out)
{
    PyObject *d = PyDict_GetItemString(type->tp_dict, name); /* borrowed */
    if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type)) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not a slot", type->tp_name, name);
        return -1;
    }
    PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
    if (m->type != T_OBJECT_EX || (m->flags & READONLY)) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not a writable object slot", type->tp_name, name);
        return -1;
    }
    *out = m->offset;
    return 0;
}

static PyObject *
fast_configure(PyObject *mod, PyObject *args)
{
    PyObject *dct, *seq, *call, *getsizeof, *fixed_sizes;
    Py_ssize_t cap, keep;
    long long tree_cap;
    if (!PyArg_ParseTuple(args, "O!O!O!nnLOO!", &PyType_Type, &dct, &PyType_Type, &seq,
                          &PyType_Type, &call, &cap, &keep, &tree_cap, &getsizeof, &PyDict_Type,
                          &fixed_sizes))
        return NULL;
    if (cap < 0 || keep < 0 || tree_cap <= 0) {
        PyErr_SetString(PyExc_ValueError, "negative bounds");
        return NULL;
    }
    Core c = {0};
    c.dct = (PyTypeObject *)dct;
    c.seq = (PyTypeObject *)seq;
    c.call = (PyTypeObject *)call;
    c.getsizeof = getsizeof;
    c.fixed_sizes = fixed_sizes;
    if (slot_offset(c.dct, "_dict", &c.dct_dict) || slot_offset(c.dct, "parts", &c.dct_parts) ||
        slot_offset(c.dct, "total", &c.dct_total) || slot_offset(c.dct, "tree", &c.dct_tree) ||
        slot_offset(c.seq, "items", &c.seq_items) || slot_offset(c.seq, "kind", &c.seq_kind) ||
        slot_offset(c.seq, "total", &c.seq_total) || slot_offset(c.seq, "tree", &c.seq_tree))
        return NULL;
    c.container_cap = cap;
    c.keep_bytes = keep;
    c.tree_cap = tree_cap;
    c.kind_list = PyUnicode_InternFromString("list");
    c.kind_set = PyUnicode_InternFromString("set");
    c.zero = PyLong_FromLong(0);
    if (!c.kind_list || !c.kind_set || !c.zero)
        return NULL;
    Py_INCREF(dct);
    Py_INCREF(seq);
    Py_INCREF(call);
    Py_INCREF(getsizeof);
    Py_INCREF(fixed_sizes);
    if (core.ready) {
        Py_DECREF(core.getsizeof);
        Py_DECREF(core.fixed_sizes);
        Py_DECREF(core.dct);
        Py_DECREF(core.seq);
        Py_DECREF(core.call);
        Py_DECREF(core.kind_list);
        Py_DECREF(core.kind_set);
        Py_DECREF(core.zero);
    }
    c.ready = 1;
    core = c;
    Py_RETURN_NONE;
}

/* A new Dct or Seq without running its __init__, every slot set as __init__ sets it: an empty
 * list (Dct.parts, Seq.items), zero counts (total, tree), and `other` in the fourth slot
 * (Dct._dict = None, Seq.kind). */
static PyObject *
new_container(PyTypeObject *type, Py_ssize_t list_off, Py_ssize_t total_off, Py_ssize_t tree_off,
              Py_ssize_t other_off, PyObject *other)
{
    PyObject *o = type->tp_alloc(type, 0);
    if (o == NULL)
        return NULL;
    PyObject *list = PyList_New(1); /* room for the first batch, as an empty list */
    if (list == NULL) {
        Py_DECREF(o);
        return NULL;
    }
    Py_SET_SIZE(list, 0);
    SLOT(o, list_off) = list;
    SLOT(o, total_off) = Py_NewRef(core.zero);
    SLOT(o, tree_off) = Py_NewRef(core.zero);
    SLOT(o, other_off) = Py_NewRef(other);
    return o;
}

static PyObject *
new_dct(void)
{
    return new_container(core.dct, core.dct_parts, core.dct_total, core.dct_tree, core.dct_dict,
                         Py_None);
}

static PyObject *
new_seq(PyObject *kind)
{
    return new_container(core.seq, core.seq_items, core.seq_total, core.seq_tree, core.seq_kind,
                         kind);
}

/* Replace a slot's value; steals `value`. */
static void
set_slot(PyObject *o, Py_ssize_t off, PyObject *value)
{
    PyObject *old = SLOT(o, off);
    SLOT(o, off) = value;
    Py_XDECREF(old);
}

/* An int slot as a C value in [-2**62, 2**62]; returns -1 when it is anything else. */
static int
int_slot(PyObject *o, Py_ssize_t off, long long *out)
{
    PyObject *v = SLOT(o, off);
    if (v == NULL || !PyLong_CheckExact(v))
        return -1;
#if PY_VERSION_HEX < 0x030C0000
    /* CPython 3.11's layout: a value of at most one 30-bit digit is sign * ob_digit[0] */
    Py_ssize_t digits = Py_SIZE(v);
    if (digits >= -1 && digits <= 1) {
        *out = (long long)digits * (long long)((PyLongObject *)v)->ob_digit[0];
        return 0;
    }
#endif
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (x == -1 && PyErr_Occurred()) || x > (1LL << 62) || x < -(1LL << 62)) {
        PyErr_Clear();
        return -1;
    }
    *out = x;
    return 0;
}

static int
set_int_slot(PyObject *o, Py_ssize_t off, long long x)
{
    PyObject *v = PyLong_FromLongLong(x);
    if (v == NULL)
        return -1;
    set_slot(o, off, v);
    return 0;
}

/* list.append(v), taking over the reference to v (which may be NULL: an error). */
static inline int
append_steal(PyObject *list, PyObject *v)
{
    if (v == NULL)
        return -1;
    PyListObject *l = (PyListObject *)list;
    Py_ssize_t n = Py_SIZE(l);
    if (n < l->allocated) {
        l->ob_item[n] = v;
        Py_SET_SIZE(l, n + 1);
        return 0;
    }
    int rc = PyList_Append(list, v);
    Py_DECREF(v);
    return rc;
}

static inline int
is_heavy(PyObject *v)
{
    PyTypeObject *t = Py_TYPE(v);
    return t == core.seq || t == core.dct || t == &PyTuple_Type;
}

static inline long long
cap_add(long long a, long long b, long long cap)
{
    return (a > cap - b) ? cap : a + b; /* a, b in [0, cap] */
}

/* pickle_vm._tuple_tree: the remembered tree of a heavy tuple, else its length. */
static long long
tuple_tree(PyObject *t, PyObject *trees)
{
    if (trees != NULL && PyDict_CheckExact(trees) && PyDict_GET_SIZE(trees)) {
        PyObject *key = PyLong_FromVoidPtr(t);
        if (key == NULL)
            return -1;
        PyObject *known = PyDict_GetItemWithError(trees, key); /* borrowed */
        Py_DECREF(key);
        if (known == NULL) {
            if (PyErr_Occurred())
                return -1;
        }
        else if (PyTuple_CheckExact(known) && PyTuple_GET_SIZE(known) == 2 &&
                 PyTuple_GET_ITEM(known, 0) == t) {
            PyObject *w = PyTuple_GET_ITEM(known, 1);
            int overflow = 0;
            long long x = PyLong_CheckExact(w) ? PyLong_AsLongLongAndOverflow(w, &overflow) : -1;
            if (overflow || x < 0 || x > core.tree_cap) {
                PyErr_Clear();
                return -2; /* not a shape the core reproduces: let Python do it */
            }
            return x;
        }
    }
    return PyTuple_GET_SIZE(t);
}

/* pickle_vm._subtrees over items[first::step] without dropping anything: the elements
 * below them (sub) and the hashing work of their tuples (work), both capped.
 * Returns 0, -1 on a Python error, -2 when the core must not go on. */
static int
subtrees(PyObject *const *items, Py_ssize_t n, Py_ssize_t first, Py_ssize_t step,
         PyObject *trees, PyObject *owner, long long *sub, long long *work)
{
    long long s = 0, w = 0, cap = core.tree_cap;
    for (Py_ssize_t i = first; i < n; i += step) {
        PyObject *v = items[i];
        PyTypeObject *t = Py_TYPE(v);
        if (t == core.seq || t == core.dct) {
            if (v != owner) {
                long long tr;
                if (int_slot(v, t == core.seq ? core.seq_tree : core.dct_tree, &tr) || tr < 0 ||
                    tr > cap)
                    return -2;
                s = cap_add(s, tr, cap);
            }
        }
        else if (t == &PyTuple_Type) {
            long long tr = tuple_tree(v, trees);
            if (tr < 0)
                return (int)tr;
            s = cap_add(s, tr, cap);
            w = cap_add(w, tr, cap);
        }
    }
    *sub = s;
    *work = w;
    return 0;
}

/* The drops _subtrees makes: nested containers forget their contents. */
static void
drop_nested(PyObject *const *items, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = items[i];
        PyTypeObject *t = Py_TYPE(v);
        if (t == core.seq) {
            set_slot(v, core.seq_items, Py_NewRef(Py_None));
        }
        else if (t == core.dct) {
            set_slot(v, core.dct_parts, Py_NewRef(Py_None));
            set_slot(v, core.dct_dict, Py_NewRef(Py_None));
        }
    }
}

static int
any_heavy(PyObject *const *items, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        if (is_heavy(items[i]))
            return 1;
    return 0;
}

/* Seq.extend(flat) / Dct.set_many(flat) followed by the loop's expansion check, when the
 * result provably needs no _grew call. `flat` is a tuple (Dct.set_many keeps its batches as
 * tuples). Returns 1 when done, 0 when Python must run the opcode (nothing was changed), -1
 * on a Python error. */
static int
fill(PyObject *target, PyObject *flat, long long exp_limit, PyObject *trees)
{
    PyObject *const *items = PySequence_Fast_ITEMS(flat);
    Py_ssize_t n = PySequence_Fast_GET_SIZE(flat);
    int is_dct = Py_TYPE(target) == core.dct;
    Py_ssize_t off_total = is_dct ? core.dct_total : core.seq_total;
    Py_ssize_t off_tree = is_dct ? core.dct_tree : core.seq_tree;
    long long total, tree, cap = core.tree_cap;
    if (int_slot(target, off_total, &total) || int_slot(target, off_tree, &tree) || tree < 0 ||
        tree > cap)
        return 0;
    int heavy = any_heavy(items, n);
    long long new_tree, work = 0;
    if (!heavy) {
        new_tree = tree + n;
    }
    else if (is_dct) {
        long long sub_v, sub_k, w_v, w_k;
        int rc = subtrees(items, n, 1, 2, trees, target, &sub_v, &w_v);
        if (rc == 0)
            rc = subtrees(items, n, 0, 2, trees, target, &sub_k, &w_k);
        if (rc)
            return rc == -1 ? -1 : 0;
        work = w_k;
        new_tree = cap_add(cap_add(cap_add(tree, n, cap), sub_k, cap), sub_v, cap);
    }
    else {
        long long sub;
        int rc = subtrees(items, n, 0, 1, trees, target, &sub, &work);
        if (rc)
            return rc == -1 ? -1 : 0;
        new_tree = cap_add(cap_add(tree, n, cap), sub, cap);
        PyObject *kind = SLOT(target, core.seq_kind);
        int is_list = kind == core.kind_list ||
                      (kind && PyUnicode_Check(kind) && PyUnicode_Compare(kind, core.kind_list) == 0);
        if (PyErr_Occurred())
            return -1;
        if (is_list)
            work = 0;
    }
    if (work || new_tree > exp_limit)
        return 0; /* Python calls _grew */
    PyObject *kept = SLOT(target, is_dct ? core.dct_parts : core.seq_items);
    if (kept != Py_None &&
        (!PyList_CheckExact(kept) || (is_dct && PyList_GET_SIZE(kept) >= core.container_cap)))
        return 0; /* a big dict: Python decides which batches to keep */
    /* commit: nothing below can fail on the stream's account */
    if (set_int_slot(target, off_total, total + (is_dct ? (n >> 1) : n)) < 0)
        return -1;
    if (heavy)
        drop_nested(items, n);
    if (set_int_slot(target, off_tree, new_tree) < 0)
        return -1;
    kept = SLOT(target, is_dct ? core.dct_parts : core.seq_items); /* a drop may clear it */
    if (kept == Py_None)
        return 1;
    if (is_dct) {
        if (append_steal(kept, Py_NewRef(flat)) < 0)
            return -1;
        if (SLOT(target, core.dct_dict) != Py_None)
            set_slot(target, core.dct_dict, Py_NewRef(Py_None));
    }
    else {
        Py_ssize_t room = core.container_cap - PyList_GET_SIZE(kept);
        for (Py_ssize_t i = 0; i < n && i < room; i++)
            if (append_steal(kept, Py_NewRef(items[i])) < 0)
                return -1;
    }
    return 1;
}

#define PUSH(v)                              \
    do {                                     \
        if (append_steal(stack, (v)) < 0)    \
            goto error;                      \
    } while (0)

#define PUSH_BORROWED(v) PUSH(Py_NewRef(v))

#define NEED(k)            \
    if (p + (k) > blen)    \
        goto out;

static inline uint32_t
u32le(const unsigned char *s)
{
    return (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24;
}

static Py_ssize_t
top_mark(PyObject *marks, Py_ssize_t depth)
{
    Py_ssize_t nm = PyList_GET_SIZE(marks);
    if (nm == 0)
        return -1;
    Py_ssize_t k = PyLong_AsSsize_t(PyList_GET_ITEM(marks, nm - 1));
    if (k == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    return (k < 0 || k > depth) ? -1 : k;
}

/* int(depth) for MARK, from a table for the depths records are built at (a batch of 1000
 * records pushes each one's MARK 1000 deep): a new reference. */
#define DEPTH_INTS 4096
static PyObject *depth_ints[DEPTH_INTS];

static PyObject *
depth_int(Py_ssize_t depth)
{
    if (depth >= DEPTH_INTS)
        return PyLong_FromSsize_t(depth);
    if (depth_ints[depth] == NULL && (depth_ints[depth] = PyLong_FromSsize_t(depth)) == NULL)
        return NULL;
    return Py_NewRef(depth_ints[depth]);
}

/* A str from UTF-8 bytes, as bytes.decode("utf-8", "surrogatepass"); ASCII (what names and
 * keys almost always are) is copied without the codec machinery. */
static PyObject *
decode_text(const char *at, Py_ssize_t n)
{
    const unsigned char *u = (const unsigned char *)at;
    Py_ssize_t i = 0;
    while (i < n && u[i] < 0x80)
        i++;
    if (i < n || n < 2) /* not ASCII; "" and 1-character strings are the codec's singletons */
        return PyUnicode_DecodeUTF8(at, n, "surrogatepass");
    PyObject *s = PyUnicode_New(n, 127);
    if (s != NULL)
        memcpy(PyUnicode_DATA(s), at, (size_t)n);
    return s;
}

/* tuple(stack[k:]), removed from the stack: the references move, none is copied. */
static PyObject *
take_tail(PyObject *stack, Py_ssize_t k)
{
    Py_ssize_t depth = PyList_GET_SIZE(stack);
    PyObject *flat = PyTuple_New(depth - k);
    if (flat == NULL)
        return NULL;
    PyObject **items = ((PyListObject *)stack)->ob_item;
    for (Py_ssize_t i = k; i < depth; i++)
        PyTuple_SET_ITEM(flat, i - k, items[i]);
    Py_SET_SIZE(stack, k); /* the list keeps its allocation; the items now belong to flat */
    return flat;
}

/* del stack[k:] without shrinking the list's allocation (it grows again at once). */
static void
drop_tail(PyObject *stack, Py_ssize_t k)
{
    Py_ssize_t depth = PyList_GET_SIZE(stack);
    PyObject **items = ((PyListObject *)stack)->ob_item;
    Py_SET_SIZE(stack, k);
    for (Py_ssize_t i = depth - 1; i >= k; i--)
        Py_DECREF(items[i]);
}

/* Undo take_tail: the items go back on the stack (its allocation still holds them). */
static void
restore_tail(PyObject *stack, PyObject *flat)
{
    Py_ssize_t k = PyList_GET_SIZE(stack), n = PyTuple_GET_SIZE(flat);
    PyObject **items = ((PyListObject *)stack)->ob_item;
    for (Py_ssize_t i = 0; i < n; i++) {
        items[k + i] = PyTuple_GET_ITEM(flat, i);
        PyTuple_SET_ITEM(flat, i, NULL);
    }
    Py_SET_SIZE(stack, k + n);
    Py_DECREF(flat);
}

/* Fill `target` with stack[k:] (as a tuple: what Dct.set_many keeps, and the loop's (k, v)
 * and (v,) for SETITEM and APPEND), popping those items. Returns 1 when done, 0 when Python
 * must run the opcode (the stack is as it was), -1 on a Python error. */
static int
fill_tail(PyObject *stack, Py_ssize_t k, PyObject *target, long long exp_limit, PyObject *trees)
{
    PyObject *flat = take_tail(stack, k);
    if (flat == NULL)
        return -1;
    int rc = fill(target, flat, exp_limit, trees);
    if (rc <= 0)
        restore_tail(stack, flat);
    else
        Py_DECREF(flat);
    return rc;
}

static void
pop_mark(PyObject *marks)
{
    drop_tail(marks, PyList_GET_SIZE(marks) - 1);
}

static PyObject *
fast_run(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "run() takes 9 arguments");
        return NULL;
    }
    if (!core.ready) {
        PyErr_SetString(PyExc_RuntimeError, "configure() was not called");
        return NULL;
    }
    PyObject *buf = args[0], *stack = args[3], *marks = args[4], *mlist = args[5],
             *spill = args[6], *trees = args[8];
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    Py_ssize_t limit = PyLong_AsSsize_t(args[2]);
    int overflow = 0;
    long long exp_limit = PyLong_AsLongLongAndOverflow(args[7], &overflow);
    if (PyErr_Occurred())
        return NULL;
    if (overflow > 0)
        exp_limit = LLONG_MAX;
    Py_ssize_t ops = 0;
    if (!PyBytes_CheckExact(buf) || !PyList_CheckExact(stack) || !PyList_CheckExact(marks) ||
        !PyList_CheckExact(mlist) || !PyDict_CheckExact(spill) || overflow < 0 || pos < 0)
        goto out; /* not the shapes the Python loop passes: run nothing */
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(buf);
    Py_ssize_t blen = PyBytes_GET_SIZE(buf);
    if (limit > blen)
        limit = blen;

    while (pos < limit) {
        Py_ssize_t p = pos + 1;
        Py_ssize_t depth = PyList_GET_SIZE(stack);
        switch (b[pos]) {
        case 0x68: { /* BINGET */
            NEED(1);
            Py_ssize_t idx = b[p];
            if (idx >= PyList_GET_SIZE(mlist))
                goto out;
            PUSH_BORROWED(PyList_GET_ITEM(mlist, idx));
            p += 1;
            break;
        }
        case 0x6A: { /* LONG_BINGET */
            NEED(4);
            Py_ssize_t idx = (Py_ssize_t)u32le(b + p);
            if (idx >= PyList_GET_SIZE(mlist))
                goto out;
            PUSH_BORROWED(PyList_GET_ITEM(mlist, idx));
            p += 4;
            break;
        }
        case 0x94: /* MEMOIZE */
            if (depth == 0 || PyDict_GET_SIZE(spill))
                goto out;
            if (append_steal(mlist, Py_NewRef(PyList_GET_ITEM(stack, depth - 1))) < 0)
                goto error;
            break;
        case 0x71:   /* BINPUT */
        case 0x72: { /* LONG_BINPUT */
            Py_ssize_t w = b[pos] == 0x71 ? 1 : 4;
            NEED(w);
            Py_ssize_t idx = w == 1 ? (Py_ssize_t)b[p] : (Py_ssize_t)u32le(b + p);
            /* only the append that needs no spill bookkeeping and no recount */
            if (depth == 0 || idx != PyList_GET_SIZE(mlist) || PyDict_GET_SIZE(spill))
                goto out;
            if (append_steal(mlist, Py_NewRef(PyList_GET_ITEM(stack, depth - 1))) < 0)
                goto error;
            p += w;
            break;
        }
        case 0x28: /* MARK */
            if (append_steal(marks, depth_int(depth)) < 0)
                goto error;
            break;
        case 0x4B: /* BININT1 */
            NEED(1);
            PUSH(PyLong_FromLong(b[p]));
            p += 1;
            break;
        case 0x4D: /* BININT2 */
            NEED(2);
            PUSH(PyLong_FromLong((long)b[p] | (long)b[p + 1] << 8));
            p += 2;
            break;
        case 0x4A: /* BININT */
            NEED(4);
            PUSH(PyLong_FromLong((long)(int32_t)u32le(b + p)));
            p += 4;
            break;
        case 0x8A: { /* LONG1, up to 8 bytes */
            NEED(1);
            Py_ssize_t n = b[p];
            if (n > 8 || p + 1 + n > blen)
                goto out;
            uint64_t u = 0;
            for (Py_ssize_t i = 0; i < n; i++)
                u |= (uint64_t)b[p + 1 + i] << (8 * i);
            PyObject *v;
            if (n == 0)
                v = PyLong_FromLong(0);
            else if (n == 8)
                v = PyLong_FromLongLong((long long)u);
            else {
                uint64_t sign = (uint64_t)1 << (8 * n - 1);
                v = PyLong_FromLongLong((long long)((u ^ sign) - sign));
            }
            PUSH(v);
            p += 1 + n;
            break;
        }
        case 0x47: /* BINFLOAT */
            NEED(8);
            {
                double d = PyFloat_Unpack8((const char *)b + p, 0);
                if (d == -1.0 && PyErr_Occurred())
                    goto error;
                PUSH(PyFloat_FromDouble(d));
            }
            p += 8;
            break;
        case 0x4E: /* NONE */
            PUSH_BORROWED(Py_None);
            break;
        case 0x88: /* NEWTRUE */
            PUSH_BORROWED(Py_True);
            break;
        case 0x89: /* NEWFALSE */
            PUSH_BORROWED(Py_False);
            break;
        case 0x8C:   /* SHORT_BINUNICODE */
        case 0x58:   /* BINUNICODE */
        case 0x43:   /* SHORT_BINBYTES */
        case 0x42: { /* BINBYTES; kept sizes only (longer ones are Python's Blobs) */
            int text = b[pos] == 0x8C || b[pos] == 0x58;
            Py_ssize_t w = b[pos] == 0x8C || b[pos] == 0x43 ? 1 : 4;
            NEED(w);
            Py_ssize_t n = w == 1 ? (Py_ssize_t)b[p] : (Py_ssize_t)u32le(b + p);
            if (n > core.keep_bytes || p + w + n > blen)
                goto out;
            const char *at = (const char *)b + p + w;
            PyObject *v = text ? decode_text(at, n) : PyBytes_FromStringAndSize(at, n);
            if (v == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
                    goto error;
                PyErr_Clear();
                goto out; /* Python reports the undecodable string */
            }
            PUSH(v);
            p += w + n;
            break;
        }
        case 0x7D: /* EMPTY_DICT */
            PUSH(new_dct());
            break;
        case 0x5D: /* EMPTY_LIST */
            PUSH(new_seq(core.kind_list));
            break;
        case 0x8F: /* EMPTY_SET */
            PUSH(new_seq(core.kind_set));
            break;
        case 0x29: /* EMPTY_TUPLE */
            PUSH(PyTuple_New(0));
            break;
        case 0x85:   /* TUPLE1 */
        case 0x86:   /* TUPLE2 */
        case 0x87: { /* TUPLE3 */
            Py_ssize_t n = b[pos] - 0x84;
            if (depth < n)
                goto out;
            if (any_heavy(PySequence_Fast_ITEMS(stack) + depth - n, n))
                goto out; /* Python remembers heavy tuples */
            PUSH(take_tail(stack, depth - n));
            break;
        }
        case 0x74: { /* TUPLE */
            Py_ssize_t k = top_mark(marks, depth);
            if (k < 0)
                goto out;
            if (any_heavy(PySequence_Fast_ITEMS(stack) + k, depth - k))
                goto out;
            pop_mark(marks);
            PUSH(take_tail(stack, k));
            break;
        }
        case 0x65:   /* APPENDS */
        case 0x75:   /* SETITEMS */
        case 0x90: { /* ADDITEMS */
            Py_ssize_t k = top_mark(marks, depth);
            if (k < 1)
                goto out; /* no mark, or nothing to add to: Python raises */
            PyObject *target = PyList_GET_ITEM(stack, k - 1);
            PyTypeObject *tt = Py_TYPE(target);
            /* SETITEMS fills a Dct and keeps hooks set on a Call (Python); APPENDS and
             * ADDITEMS fill a Seq; on anything else the batch is dropped */
            int fills = b[pos] == 0x75 ? tt == core.dct : tt == core.seq;
            if (b[pos] == 0x75 && tt == core.call)
                goto out;
            if (fills && b[pos] == 0x75 && depth - k > 1 &&
                Py_TYPE(PyList_GET_ITEM(stack, k + 1)) == core.call)
                goto out; /* a state dict entry: Python records the tensor */
            if (!fills) {
                pop_mark(marks);
                drop_tail(stack, k);
                break;
            }
            int rc = fill_tail(stack, k, target, exp_limit, trees);
            if (rc < 0)
                goto error;
            if (rc == 0)
                goto out; /* Python runs the opcode on the same stack */
            pop_mark(marks);
            break;
        }
        case 0x73: { /* SETITEM */
            if (depth < 3)
                goto out;
            PyObject *target = PyList_GET_ITEM(stack, depth - 3);
            PyObject *v = PyList_GET_ITEM(stack, depth - 1);
            PyTypeObject *tt = Py_TYPE(target);
            if (Py_TYPE(v) == core.call || tt == core.call)
                goto out; /* mapping hooks and tensor records: Python */
            int rc = tt == core.dct ? fill_tail(stack, depth - 2, target, exp_limit, trees) : 2;
            if (rc < 0)
                goto error;
            if (rc == 0)
                goto out;
            if (rc == 2) /* not a dict: the pair is dropped */
                drop_tail(stack, depth - 2);
            break;
        }
        case 0x61: { /* APPEND */
            if (depth < 2)
                goto out;
            PyObject *target = PyList_GET_ITEM(stack, depth - 2);
            int rc = Py_TYPE(target) == core.seq
                         ? fill_tail(stack, depth - 1, target, exp_limit, trees)
                         : 2;
            if (rc < 0)
                goto error;
            if (rc == 0)
                goto out;
            if (rc == 2) /* not a list or set: the item is dropped */
                drop_tail(stack, depth - 1);
            break;
        }
        case 0x30: { /* POP (pops a MARK on top, as _pickle.c does) */
            Py_ssize_t nm = PyList_GET_SIZE(marks);
            Py_ssize_t k = nm ? top_mark(marks, depth) : 0;
            if (k < 0)
                goto out;
            if (nm && k == depth)
                pop_mark(marks);
            else if (depth > k)
                drop_tail(stack, depth - 1);
            else
                goto out;
            break;
        }
        case 0x31: { /* POP_MARK */
            Py_ssize_t k = top_mark(marks, depth);
            if (k < 0)
                goto out;
            pop_mark(marks);
            drop_tail(stack, k);
            break;
        }
        case 0x32: /* DUP */
            if (depth == 0)
                goto out;
            PUSH_BORROWED(PyList_GET_ITEM(stack, depth - 1));
            break;
        default:
            goto out;
        }
        pos = p;
        ops++;
    }
out:
    return Py_BuildValue("(nn)", ops, pos);
error:
    return NULL;
}

/* sizes(values, start) -> sum(map(sys.getsizeof, values[start:])), without calling getsizeof
 * for the types configure() was told have one size (Memo.nbytes, at every checkpoint). */
static PyObject *
fast_sizes(PyObject *mod, PyObject *args)
{
    PyObject *values;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "O!n", &PyList_Type, &values, &start))
        return NULL;
    if (!core.ready) {
        PyErr_SetString(PyExc_RuntimeError, "configure() was not called");
        return NULL;
    }
    long long total = 0;
    PyTypeObject *last = NULL;
    long long last_size = 0;
    for (Py_ssize_t i = start < 0 ? 0 : start; i < PyList_GET_SIZE(values); i++) {
        PyObject *v = PyList_GET_ITEM(values, i);
        PyTypeObject *t = Py_TYPE(v);
        long long size;
        if (t == last) {
            size = last_size;
        }
        else if (t == &PyUnicode_Type && PyUnicode_IS_COMPACT_ASCII(v)
#if PY_VERSION_HEX < 0x030C0000
                 && ((PyASCIIObject *)v)->wstr == NULL /* no wchar_t copy to count */
#endif
        ) {
            /* str.__sizeof__ of a compact ASCII string (Objects/unicodeobject.c); str is not
             * a GC type, so getsizeof adds nothing */
            size = (long long)sizeof(PyASCIIObject) + PyUnicode_GET_LENGTH(v) + 1;
        }
        else {
            PyObject *known = PyDict_GetItemWithError(core.fixed_sizes, (PyObject *)t);
            if (known == NULL && PyErr_Occurred())
                return NULL;
            if (known && PyTuple_CheckExact(known) && PyTuple_GET_SIZE(known) == 2) {
                /* a variable-size type without a __sizeof__ of its own (tuple) */
                long long base = PyLong_AsLongLong(PyTuple_GET_ITEM(known, 0));
                long long per = PyLong_AsLongLong(PyTuple_GET_ITEM(known, 1));
                if (PyErr_Occurred())
                    return NULL;
                total += base + per * Py_SIZE(v);
                continue;
            }
            PyObject *got = known ? Py_NewRef(known) : PyObject_CallOneArg(core.getsizeof, v);
            if (got == NULL)
                return NULL;
            size = PyLong_AsLongLong(got);
            Py_DECREF(got);
            if (size == -1 && PyErr_Occurred())
                return NULL;
            if (known) {
                last = t;
                last_size = size;
            }
        }
        total += size;
    }
    return PyLong_FromLongLong(total);
}

static PyMethodDef methods[] = {
    {"sizes", fast_sizes, METH_VARARGS,
     "sizes(values, start) -> sum(map(sys.getsizeof, values[start:]))"},
    {"run", (PyCFunction)(void (*)(void))fast_run, METH_FASTCALL,
     "run(buf, pos, limit, stack, marks, memo_list, memo_spill, exp_limit, trees) -> (ops, pos)"},
    {"configure", fast_configure, METH_VARARGS,
     "configure(Dct, Seq, Call, container_cap, keep_bytes, tree_cap, getsizeof, fixed_sizes)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_pickle_fast",
    .m_doc = "The compiled core of modelscan_lite.formats.pickle_vm (see the C source).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__pickle_fast(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddStringConstant(m, "SOURCE_DIGEST", MSL_SOURCE_DIGEST) < 0 ||
        PyModule_AddIntConstant(m, "API", 1) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
