// Typesets card HTML with MathJax 3 configured as Anki configures it (ts/lib/mathjax: the
// tex-chtml-full bundle, \( \) and \[ \] only, no environments outside them, no ui/safe) and
// prints the typeset HTML of each. Input on stdin: a JSON list of HTML strings.
// Run from tests/js (where `npm ci` put node_modules/mathjax).
const path = require("path");
const fs = require("fs");

const cards = JSON.parse(fs.readFileSync(0, "utf8"));
require(path.join(__dirname, "node_modules", "mathjax")).init({
  loader: { load: ["input/tex-full", "output/chtml", "adaptors/liteDOM"] },
  tex: {
    displayMath: [["\\[", "\\]"]],
    processEscapes: false,
    processEnvironments: false,
    processRefs: false,
    packages: { "[+]": ["noerrors", "mathtools"], "[-]": ["textmacros"] },
  },
  startup: { typeset: false },
}).then(async (MathJax) => {
  const adaptor = MathJax.startup.adaptor;
  const typeset = [];
  for (const html of cards) {
    const doc = MathJax._.mathjax.mathjax.document(`<html><body>${html}</body></html>`, {
      InputJax: MathJax.startup.input,
      OutputJax: MathJax.startup.output,
    });
    // \require and the like may load more: retry until done, as MathJax itself does.
    await MathJax._.util.Retries.handleRetriesFor(() => doc.render());
    typeset.push(adaptor.innerHTML(adaptor.body(doc.document)));
  }
  process.stdout.write(JSON.stringify(typeset));
}).catch((error) => {
  console.error(error);
  process.exit(1);
});
