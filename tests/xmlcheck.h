/* xmlcheck.h - a small well-formedness check of XML text (for the SVG
 * files rac writes): one root element, tags nested and closed, attribute
 * values quoted, '&' only in entity references, no '<' in text or
 * attribute values.  Returns NULL if well formed, else a static message. */
#ifndef RA_XMLCHECK_H
#define RA_XMLCHECK_H

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

static inline int xc_entity(const char *p) {
  /* p at '&': &name; or &#digits; */
  const char *q = p + 1;
  if (*q == '#') {
    q++;
    if (!isdigit((unsigned char)*q)) return 0;
    while (isdigit((unsigned char)*q)) q++;
  } else {
    if (!isalpha((unsigned char)*q)) return 0;
    while (isalnum((unsigned char)*q)) q++;
  }
  return *q == ';';
}

static inline const char *xml_check(const char *s) {
  static char msg[160];
  char stack[64][48];
  int depth = 0, roots = 0;
  const char *p = s;
  while (*p) {
    if (*p != '<') {
      if (*p == '&' && !xc_entity(p)) return "a bare '&' in text";
      if (depth == 0 && !isspace((unsigned char)*p)) return "text outside the root element";
      p++;
      continue;
    }
    if (!strncmp(p, "<?", 2)) {
      const char *e = strstr(p, "?>");
      if (!e) return "an unclosed <?";
      p = e + 2;
      continue;
    }
    if (!strncmp(p, "<!--", 4)) {
      const char *e = strstr(p, "-->");
      if (!e) return "an unclosed comment";
      p = e + 3;
      continue;
    }
    int closing = p[1] == '/';
    const char *n = p + 1 + closing;
    size_t nl = 0;
    while (n[nl] && (isalnum((unsigned char)n[nl]) || strchr(":_-.", n[nl]))) nl++;
    if (nl == 0 || nl >= 48) return "a tag without a valid name";
    const char *q = n + nl;
    int self = 0;
    for (;;) {
      while (isspace((unsigned char)*q)) q++;
      if (*q == '>') { q++; break; }
      if (*q == '/' && q[1] == '>' && !closing) { self = 1; q += 2; break; }
      if (closing) return "attributes in a closing tag";
      size_t al = 0;
      while (q[al] && (isalnum((unsigned char)q[al]) || strchr(":_-.", q[al]))) al++;
      if (al == 0) return "a malformed attribute";
      q += al;
      while (isspace((unsigned char)*q)) q++;
      if (*q != '=') return "an attribute without '='";
      q++;
      while (isspace((unsigned char)*q)) q++;
      char quote = *q;
      if (quote != '"' && quote != '\'') return "an unquoted attribute value";
      q++;
      while (*q && *q != quote) {
        if (*q == '<') return "'<' in an attribute value";
        if (*q == '&' && !xc_entity(q)) return "a bare '&' in an attribute value";
        q++;
      }
      if (!*q) return "an unterminated attribute value";
      q++;
    }
    if (closing) {
      if (depth == 0) return "a closing tag without an open one";
      depth--;
      if (strlen(stack[depth]) != nl || strncmp(stack[depth], n, nl)) {
        snprintf(msg, sizeof msg, "</%.*s> closes <%.47s>", (int)nl, n, stack[depth]);
        return msg;
      }
    } else {
      if (depth == 0 && ++roots > 1) return "more than one root element";
      if (!self) {
        if (depth == 64) return "nested too deep";
        memcpy(stack[depth], n, nl);
        stack[depth][nl] = 0;
        depth++;
      }
    }
    p = q;
  }
  if (depth) {
    snprintf(msg, sizeof msg, "<%s> is never closed", stack[depth - 1]);
    return msg;
  }
  return roots == 1 ? NULL : "no root element";
}

/* The SVG file rac wrote at path is well formed (and xmllint, where it is
 * installed, agrees); want: a text it must contain, or NULL. */
static inline void xml_check_svg_file(const char *path, const char *want) {
  char *text = tu_read_file(path, NULL);
  cr_assert(text, "missing %s", path);
  const char *bad = xml_check(text);
  cr_assert(bad == NULL, "%s is not well formed: %s", path, bad);
  cr_assert(strstr(text, "<svg xmlns=\"http://www.w3.org/2000/svg\""), "%s", path);
  cr_assert(!want || strstr(text, want), "%s has no '%s'", path, want);
  free(text);
  if (system("command -v xmllint >/dev/null 2>&1") == 0) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "xmllint --noout '%s'", path);
    cr_assert_eq(system(cmd), 0, "xmllint rejects %s", path);
  }
}

#endif
