// Parses LogQL queries offline with Grafana's own grammar (@grafana/lezer-logql,
// the parser of Grafana's Loki query editor).
//
// Input on stdin: a JSON array of queries (template variables already
// substituted). Output on stdout: a JSON array, one object per query:
//   {"query": "...", "errors": ["at 12: ..."], "labels": ["app", ...]}
// where labels are the label names the query's stream selectors, label
// filters and groupings use. Exit status 0 unless the input is unreadable.
import { parser } from "@grafana/lezer-logql";
import { readFileSync } from "node:fs";

const queries = JSON.parse(readFileSync(0, "utf8"));
const results = queries.map((query) => {
  const tree = parser.parse(query);
  const errors = [];
  const labels = new Set();
  tree.iterate({
    enter(node) {
      if (node.type.isError) {
        errors.push(`at ${node.from}: unexpected ${JSON.stringify(query.slice(node.from, node.from + 10))}`);
      }
      if (node.name === "Matcher" || node.name === "Grouping" || node.name === "LabelFilter") {
        const cursor = node.node.cursor();
        cursor.iterate((inner) => {
          if (inner.name === "Identifier") {
            labels.add(query.slice(inner.from, inner.to));
          }
        });
      }
    },
  });
  return { query, errors, labels: [...labels].sort() };
});
process.stdout.write(JSON.stringify(results, null, 2) + "\n");
