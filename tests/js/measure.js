// Measures every card frame of a deckgen preview page (`.side > .card`) and returns, per frame,
// what a learner on that screen would see wrong. Run after MathJax has typeset the page.
(() => {
  const EPS = 1;  // px: sub-pixel rounding is no overflow
  const isScroller = (el) => {
    const s = getComputedStyle(el);
    return s.overflowX === 'auto' || s.overflowX === 'scroll';
  };
  const describe = (el) => {
    let d = el.tagName.toLowerCase();
    if (el.className && typeof el.className === 'string') d += '.' + el.className.trim().split(/\s+/).join('.');
    const text = (el.textContent || '').trim().replace(/\s+/g, ' ');
    return d + (text ? ` "${text.slice(0, 40)}"` : '');
  };
  // A scroll container shows a cue when a shadow (a gradient drawn fixed to its box, not to
  // its content) sits at its right edge with some opacity.
  const hasCue = (el) => {
    const s = getComputedStyle(el);
    const images = s.backgroundImage.split(/,(?![^(]*\))/).length ? s.backgroundImage : '';
    const layers = [];
    let depth = 0, cur = '';
    for (const ch of images) {
      if (ch === '(') depth++;
      if (ch === ')') depth--;
      if (ch === ',' && depth === 0) { layers.push(cur.trim()); cur = ''; } else cur += ch;
    }
    if (cur.trim()) layers.push(cur.trim());
    const attach = s.backgroundAttachment.split(',').map((x) => x.trim());
    const posX = s.backgroundPositionX.split(',').map((x) => x.trim());
    return layers.some((layer, i) => {
      if (!/gradient/.test(layer)) return false;
      const a = attach[i % attach.length], x = posX[i % posX.length];
      if (a !== 'scroll' || !/^(100%|right|calc\(100% - [0-9.]+px\))$/.test(x)) return false;  // at the right edge
      // some colour stop that is not transparent
      return /rgba?\((?![^)]*,\s*0\))/.test(layer);
    });
  };
  // Line breaks inside a run of non-space characters of a text node.
  const breaksInsideTokens = (root, allowed, exempt = () => false) => {
    const found = [];
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const range = document.createRange();
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (exempt(node)) continue;
      const t = node.data;
      let prevTop = null, prevChar = '';
      for (let i = 0; i < t.length; i++) {
        const c = t[i];
        if (/\s/.test(c)) { prevTop = null; prevChar = c; continue; }
        range.setStart(node, i); range.setEnd(node, i + 1);
        const r = range.getClientRects()[0];
        if (!r) continue;
        if (prevTop !== null && r.top > prevTop + 2 && !allowed(prevChar, c)) {
          found.push(t.slice(Math.max(0, i - 12), i) + '⏎' + t.slice(i, i + 12));
        }
        prevTop = r.top; prevChar = c;
      }
    }
    return found;
  };
  const cjk = (c) => /[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\u3000-\u303f]/.test(c);
  const results = [];
  document.querySelectorAll('.side > .card').forEach((frame, index) => {
    const problems = [];
    const box = frame.getBoundingClientRect();
    const left = box.left, right = box.right;
    // MathJax errors. With Anki's noerrors a TeX error shows as its TeX (mjx-merror), an undefined
    // macro in red, and math MathJax could not even delimit stays as raw \( … \) text.
    frame.querySelectorAll('mjx-math mjx-merror').forEach((e) =>
      problems.push(`MathJax error: ${e.getAttribute('data-mjx-error') || e.textContent}`.slice(0, 120)));
    frame.querySelectorAll('mjx-math mjx-mtext[style*="color: red"]').forEach((e) =>
      problems.push(`MathJax: undefined macro in ${describe(e.closest('.math') || e)}`.slice(0, 120)));
    const texts = document.createTreeWalker(frame, NodeFilter.SHOW_TEXT);
    for (let node = texts.nextNode(); node; node = texts.nextNode()) {
      if (/\\[([]/.test(node.data) && !node.parentElement.closest('pre, code, script, mjx-container'))
        problems.push(`TeX left untypeset: ${node.data.trim().slice(0, 60)}`);
    }
    // Overflow: walk the tree; a scroll container that fits hides what it holds.
    const walk = (el) => {
      for (const child of el.children) {
        if (['SCRIPT', 'STYLE', 'MJX-ASSISTIVE-MML'].includes(child.tagName)) continue;  // (MathML for screen readers: clipped, never seen)
        const r = child.getBoundingClientRect();
        const shown = r.width > 0 || r.height > 0;
        if (shown && (r.right > right + EPS || r.left < left - EPS)) {
          problems.push(`past the screen by ${Math.round(Math.max(r.right - right, left - r.left))} px: ${describe(child)}`);
          continue;
        }
        if (isScroller(child) && child.scrollWidth > child.clientWidth + EPS) {
          if (!hasCue(child)) problems.push(`scrolls without a cue (${child.scrollWidth} px in ${child.clientWidth}): ${describe(child)}`);
          // What is hidden must be something a learner sees, or the cue promises nothing.
          const edge = r.left + child.clientLeft + child.clientWidth + EPS;
          let seen = false;
          const all = document.createTreeWalker(child, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
          const range = document.createRange();
          for (let n = all.nextNode(); n && !seen; n = all.nextNode()) {
            if (n.nodeType === Node.ELEMENT_NODE && n.tagName === 'MJX-ASSISTIVE-MML') {
              let last = n;
              while (last.lastChild) last = last.lastChild;
              all.currentNode = last;  // skip its subtree
              continue;
            }
            let box;
            if (n.nodeType === Node.TEXT_NODE) {
              if (!n.data.trim()) continue;
              range.selectNodeContents(n);
              box = range.getBoundingClientRect();
            } else box = n.getBoundingClientRect();
            seen = box.width > 0 && box.right > edge;
          }
          // (Text reaching into the end padding scrolls by that padding at most: no false promise.)
          const padding = parseFloat(getComputedStyle(child).paddingRight);
          if (!seen && child.scrollWidth - child.clientWidth > padding + EPS)
            problems.push(`scrolls, with a cue, though everything fits (${child.scrollWidth} px in ${child.clientWidth}): ${describe(child)}`);
          continue;
        }
        walk(child);
      }
    };
    walk(frame);
    if (frame.scrollWidth > frame.clientWidth + EPS) problems.push(`the card scrolls sideways (${frame.scrollWidth} px)`);
    // Inline code and table cells: a line may end at a space (or between CJK characters), never inside a token.
    // (A single word of code wider than the whole line must wrap somewhere: that is allowed.)
    const widerThanLine = (node) => {
      const word = node.parentElement.closest('.tok');
      if (!word) return false;
      let block = word.parentElement;
      while (getComputedStyle(block).display.startsWith('inline')) block = block.parentElement;
      const s = getComputedStyle(block);
      return word.getBoundingClientRect().width >= block.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight) - 2;
    };
    frame.querySelectorAll('code').forEach((code) => {
      if (code.closest('pre') || code.getClientRects().length < 2) return;
      for (const b of breaksInsideTokens(code, () => false, widerThanLine)) problems.push(`inline code broken inside a token: ${b}`);
    });
    frame.querySelectorAll('td, th').forEach((cell) => {
      if (cell.getClientRects()[0].height < 40) return;  // one line: nothing to break
      for (const b of breaksInsideTokens(cell, (p, c) => cjk(p) || cjk(c) || /[-/,;:.!?)\]}，。；：、）]/.test(p)))
        problems.push(`table cell broken inside a word: ${b}`);
    });
    // Labels: a code block's language label must not sit on its code.
    frame.querySelectorAll('pre[data-lang]').forEach((pre) => {
      const s = getComputedStyle(pre, '::before');
      if (s.content === 'none' || s.display === 'none') return;
      const code = pre.querySelector('code') || pre;
      const lines = code.getClientRects();
      if (!lines.length) return;
      const p = pre.getBoundingClientRect();
      const pad = getComputedStyle(pre);
      const h = parseFloat(s.height), w = parseFloat(s.width);
      let label;
      if (s.position === 'absolute' || s.position === 'fixed') {
        const top = p.top + parseFloat(pad.borderTopWidth) + parseFloat(s.top || 0);
        const r = p.right - parseFloat(pad.borderRightWidth) - parseFloat(s.right || 0);
        label = {top, bottom: top + h, left: r - w, right: r};
      } else {
        const top = p.top + parseFloat(pad.borderTopWidth) + parseFloat(pad.paddingTop);
        label = {top, bottom: top + h, left: p.left, right: p.right};
      }
      // the text of the code's first line
      const range = document.createRange();
      const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const nl = node.data.indexOf('\n');
        range.setStart(node, 0); range.setEnd(node, nl < 0 ? node.data.length : nl);
        for (const r of range.getClientRects()) {
          if (r.width && r.bottom > label.top + EPS && r.top < label.bottom - EPS &&
              r.right > label.left + EPS && r.left < label.right - EPS)
            problems.push(`language label "${s.content}" over the code: ${describe(pre)}`);
        }
        if (nl >= 0) break;
      }
    });
    results.push({index, problems: [...new Set(problems)], height: Math.round(frame.getBoundingClientRect().height)});
  });
  return results;
})()
