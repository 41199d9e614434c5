/* template.c: the templates of template.h, read, cut into tokens and filled.
 * Depends on: tool (messages, allocation). */
#include "template.h"
#include "tool.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define TMPL_PATH_LEN 4096
#define TMPL_NAME_LEN 64
#define TMPL_MAX_DEPTH 8 /* partials within partials */

/* One name of a set of values: a text, or a list of items (each a set of its own). */
typedef struct entry {
    char name[TMPL_NAME_LEN];
    char *text;         /* NULL for a list */
    amlfs_tmpl **items; /* a list's items */
    int nitems, is_list;
    struct entry *next;
} entry;

struct amlfs_tmpl {
    entry *entries;
};

/* While filling: the items of the sections entered, innermost first (Mustache's
 * context stack), where a name is looked up. */
typedef struct frame {
    const amlfs_tmpl *t;
    const struct frame *up;
} frame;

amlfs_tmpl *amlfs_tmpl_new(void) { return amlfs_zalloc(1, sizeof(amlfs_tmpl)); }

void amlfs_tmpl_free(amlfs_tmpl *t)
{
    if (!t)
        return;
    for (entry *e = t->entries, *next; e; e = next) {
        next = e->next;
        free(e->text);
        for (int i = 0; i < e->nitems; i++)
            amlfs_tmpl_free(e->items[i]);
        free(e->items);
        free(e);
    }
    free(t);
}

/* The entry of name in t itself, made when new. */
static entry *entry_of(amlfs_tmpl *t, const char *name)
{
    for (entry *e = t->entries; e; e = e->next)
        if (!strcmp(e->name, name))
            return e;
    entry *e = amlfs_zalloc(1, sizeof *e);
    if (snprintf(e->name, sizeof e->name, "%s", name) >= (int)sizeof e->name)
        amlfs_fail(AMLFS_EXIT_FAILED, NULL, "template name too long: %s", name);
    e->next = t->entries;
    t->entries = e;
    return e;
}

void amlfs_tmpl_set(amlfs_tmpl *t, const char *name, const char *fmt, ...)
{
    entry *e = entry_of(t, name);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    free(e->text);
    e->text = amlfs_zalloc((size_t)n + 1, 1);
    va_start(ap, fmt);
    vsnprintf(e->text, (size_t)n + 1, fmt, ap);
    va_end(ap);
}

amlfs_tmpl *amlfs_tmpl_item(amlfs_tmpl *t, const char *list)
{
    entry *e = entry_of(t, list);
    e->is_list = 1;
    amlfs_tmpl **items = realloc(e->items, sizeof *items * (size_t)(e->nitems + 1));
    if (!items)
        amlfs_fail(AMLFS_EXIT_FAILED, NULL, "out of memory (template list %s)", list);
    e->items = items;
    amlfs_tmpl *item = amlfs_tmpl_new();
    e->items[e->nitems++] = item;
    return item;
}

void amlfs_tmpl_flag(amlfs_tmpl *t, const char *name, int on)
{
    entry_of(t, name)->is_list = 1;
    if (on)
        amlfs_tmpl_item(t, name);
}

/* The entry of name in the innermost item that sets it, or NULL. */
static const entry *lookup(const frame *fr, const char *name)
{
    for (; fr; fr = fr->up)
        for (const entry *e = fr->t->entries; e; e = e->next)
            if (!strcmp(e->name, name))
                return e;
    return NULL;
}

/* ---- reading a template into tokens ------------------------------------------------- */

typedef enum { TOK_TEXT, TOK_VALUE, TOK_SECTION, TOK_INVERTED, TOK_CLOSE, TOK_PARTIAL } tok_kind;

typedef struct {
    tok_kind kind;
    const char *text; /* TOK_TEXT: into the template's buffer */
    size_t len;
    char name[TMPL_NAME_LEN];
    int line; /* where the tag is, for messages */
    int close; /* sections: the index of their closing token */
} token;

typedef struct {
    char path[TMPL_PATH_LEN];
    char *buf;
    token *tok;
    int ntok;
} parsed;

static char *read_whole(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "cannot read: %s", strerror(errno));
    size_t cap = 4096, len = 0;
    char *buf = amlfs_zalloc(cap, 1);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len - 1 == 0) {
            char *more = realloc(buf, cap * 2);
            if (!more)
                amlfs_fail(AMLFS_EXIT_FAILED, path, "out of memory");
            buf = more;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "cannot read: %s", strerror(errno));
    buf[len] = '\0';
    return buf;
}

static int line_at(const char *buf, const char *p)
{
    int line = 1;
    for (; buf < p; buf++)
        line += *buf == '\n';
    return line;
}

static void add_token(parsed *p, token t)
{
    token *tok = realloc(p->tok, sizeof *tok * (size_t)(p->ntok + 1));
    if (!tok)
        amlfs_fail(AMLFS_EXIT_FAILED, p->path, "out of memory");
    p->tok = tok;
    p->tok[p->ntok++] = t;
}

/* Cuts p->buf into text and tags; a line of one standalone tag (not a value) loses its
 * blanks and its line break. */
static void tokenize(parsed *p)
{
    const char *s = p->buf, *pos = s, *open;
    while ((open = strstr(pos, "{{"))) {
        int line = line_at(s, open);
        const char *shut = strstr(open + 2, "}}");
        if (!shut)
            amlfs_fail(AMLFS_EXIT_USAGE, p->path, "line %d: {{ without }}", line);
        const char *in = open + 2, *in_end = shut;
        while (in < in_end && (*in == ' ' || *in == '\t'))
            in++;
        token t = {TOK_VALUE, NULL, 0, "", line, -1};
        int comment = 0;
        switch (in < in_end ? *in : 0) {
        case '#': t.kind = TOK_SECTION; in++; break;
        case '^': t.kind = TOK_INVERTED; in++; break;
        case '/': t.kind = TOK_CLOSE; in++; break;
        case '>': t.kind = TOK_PARTIAL; in++; break;
        case '!': comment = 1; break;
        default: break;
        }
        const char *after = shut + 2, *text_end = open;
        if (t.kind != TOK_VALUE || comment) {
            const char *ls = open;
            while (ls > pos && (ls[-1] == ' ' || ls[-1] == '\t'))
                ls--;
            const char *le = after;
            while (*le == ' ' || *le == '\t')
                le++;
            if ((ls == s || ls[-1] == '\n') && ls >= pos && (*le == '\n' || !*le)) {
                text_end = ls;
                after = *le ? le + 1 : le;
            }
        }
        if (text_end > pos)
            add_token(p, (token){TOK_TEXT, pos, (size_t)(text_end - pos), "", line, -1});
        pos = after;
        if (comment)
            continue;
        while (in < in_end && (*in == ' ' || *in == '\t'))
            in++;
        while (in_end > in && (in_end[-1] == ' ' || in_end[-1] == '\t'))
            in_end--;
        size_t n = (size_t)(in_end - in);
        if (!n || n >= sizeof t.name || strspn(in, "abcdefghijklmnopqrstuvwxyz"
                                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") < n)
            amlfs_fail(AMLFS_EXIT_USAGE, p->path, "line %d: not a tag: {{%.*s}}", line,
                       (int)(shut - open - 2), open + 2);
        memcpy(t.name, in, n);
        t.name[n] = '\0';
        add_token(p, t);
    }
    if (*pos)
        add_token(p, (token){TOK_TEXT, pos, strlen(pos), "", 0, -1});
    /* match the sections with their ends */
    int stack[64], depth = 0;
    for (int i = 0; i < p->ntok; i++) {
        token *t = &p->tok[i];
        if (t->kind == TOK_SECTION || t->kind == TOK_INVERTED) {
            if (depth == (int)(sizeof stack / sizeof stack[0]))
                amlfs_fail(AMLFS_EXIT_USAGE, p->path, "line %d: sections nested too deep",
                           t->line);
            stack[depth++] = i;
        } else if (t->kind == TOK_CLOSE) {
            if (!depth || strcmp(p->tok[stack[depth - 1]].name, t->name))
                amlfs_fail(AMLFS_EXIT_USAGE, p->path, "line %d: {{/%s}} closes no open section",
                           t->line, t->name);
            p->tok[stack[--depth]].close = i;
        }
    }
    if (depth)
        amlfs_fail(AMLFS_EXIT_USAGE, p->path, "line %d: {{#%s}} is never closed",
                   p->tok[stack[depth - 1]].line, p->tok[stack[depth - 1]].name);
}

static void parse(parsed *p, const char *dir, const char *name)
{
    memset(p, 0, sizeof *p);
    if (strchr(name, '/') ||
        snprintf(p->path, sizeof p->path, "%s/%s", dir, name) >= (int)sizeof p->path)
        amlfs_fail(AMLFS_EXIT_USAGE, name, "not a template name in %s", dir);
    p->buf = read_whole(p->path);
    tokenize(p);
}

static void unparse(parsed *p)
{
    free(p->buf);
    free(p->tok);
}

/* ---- filling --------------------------------------------------------------------------- */

static void fill(FILE *f, const char *dir, const parsed *p, int from, int to,
                 const frame *fr, int depth);

static void fill_file(FILE *f, const char *dir, const char *name, const frame *fr,
                      int depth)
{
    parsed p;
    parse(&p, dir, name);
    fill(f, dir, &p, 0, p.ntok, fr, depth);
    unparse(&p);
}

static void fill(FILE *f, const char *dir, const parsed *p, int from, int to,
                 const frame *fr, int depth)
{
    for (int i = from; i < to; i++) {
        const token *k = &p->tok[i];
        if (k->kind == TOK_TEXT) {
            fwrite(k->text, 1, k->len, f);
            continue;
        }
        if (k->kind == TOK_PARTIAL) {
            if (depth >= TMPL_MAX_DEPTH)
                amlfs_fail(AMLFS_EXIT_USAGE, p->path, "line %d: {{>%s}}: partials nested "
                           "too deep", k->line, k->name);
            fill_file(f, dir, k->name, fr, depth + 1);
            continue;
        }
        const entry *e = lookup(fr, k->name);
        if (!e)
            amlfs_fail(AMLFS_EXIT_USAGE, p->path, "line %d: %s has no value", k->line, k->name);
        if (k->kind == TOK_VALUE) {
            if (e->is_list)
                amlfs_fail(AMLFS_EXIT_USAGE, p->path, "line %d: %s is a list, not a value",
                           k->line, k->name);
            fputs(e->text, f);
        } else if (!e->is_list) {
            amlfs_fail(AMLFS_EXIT_USAGE, p->path, "line %d: %s is a value, not a list",
                       k->line, k->name);
        } else if (k->kind == TOK_SECTION) {
            for (int j = 0; j < e->nitems; j++) {
                frame inner = {e->items[j], fr};
                fill(f, dir, p, i + 1, k->close, &inner, depth);
            }
            i = k->close;
        } else { /* TOK_INVERTED */
            if (!e->nitems)
                fill(f, dir, p, i + 1, k->close, fr, depth);
            i = k->close;
        }
    }
}

void amlfs_tmpl_write(FILE *f, const char *dir, const char *name, const amlfs_tmpl *t)
{
    frame root = {t, NULL};
    fill_file(f, dir, name, &root, 0);
}
