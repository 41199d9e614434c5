/* template.h: text files with placeholders, filled by a tool (the report's gnuplot scripts
 * and HTML page under share/report/). Depends on tool.h only.
 *
 * The template language, a small part of Mustache's:
 *   {{name}}            the value of name, as set (no escaping: the tool escapes for HTML)
 *   {{#list}}..{{/list}} the text once per item of list; a name is looked up in that
 *                       item first, then in the items of the sections around it (as
 *                       Mustache's context stack), then the root; no items: nothing
 *   {{^list}}..{{/list}} the text once when list has no items
 *   {{! comment }}      nothing (notes for the reader of the template)
 *   {{>file}}           the template file beside this one, filled from here
 * A line that holds only one tag other than {{name}} (and blanks) leaves no line behind.
 * A name that was never set is an error (exit 2 naming the template and its line): a
 * template and its tool must agree. A flag is a list of one item (on) or none (off). */
#ifndef AMLFS_TEMPLATE_H
#define AMLFS_TEMPLATE_H

#include <stdio.h>

typedef struct amlfs_tmpl amlfs_tmpl;

/* A new, empty set of values (the root). */
amlfs_tmpl *amlfs_tmpl_new(void);
/* Frees the root and every item under it. */
void amlfs_tmpl_free(amlfs_tmpl *t);

/* Sets name to the formatted text (replacing an earlier value). */
void amlfs_tmpl_set(amlfs_tmpl *t, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Adds an item at the end of list (made when new) and returns it, to set its names. */
amlfs_tmpl *amlfs_tmpl_item(amlfs_tmpl *t, const char *list);
/* Makes list a flag: one empty item when on, none when off. */
void amlfs_tmpl_flag(amlfs_tmpl *t, const char *name, int on);

/* Writes the template dir/name filled from t to f. Exit 2 naming the file when it cannot
 * be read or is not a valid template. */
void amlfs_tmpl_write(FILE *f, const char *dir, const char *name, const amlfs_tmpl *t);

#endif
