import assert from 'node:assert/strict';
import { test } from 'node:test';
import { barChartSvg, escapeXml, lineChartSvg } from '../../src/eval/svg.js';

/** A small well-formedness check: balanced tags, quoted attributes, no raw '<' or stray '&' in text. */
function assertWellFormedXml(xml: string): void {
  const stack: string[] = [];
  const entity = /&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g;
  const tagRe = /<[^<>]*>/g;
  let last = 0;
  let roots = 0;
  for (const m of xml.matchAll(tagRe)) {
    const text = xml.slice(last, m.index);
    assert.ok(!text.includes('<') && !text.replace(entity, '').includes('&'), `bad text before ${m[0]}: ${JSON.stringify(text)}`);
    last = m.index! + m[0].length;
    const tag = m[0];
    if (tag.startsWith('<?')) {
      assert.ok(tag.endsWith('?>') && m.index === 0, 'XML declaration must come first');
      continue;
    }
    const close = /^<\/([A-Za-z][\w:-]*)\s*>$/.exec(tag);
    if (close) {
      assert.equal(stack.pop(), close[1], `unbalanced </${close[1]}>`);
      continue;
    }
    const open = /^<([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>$/.exec(tag);
    assert.ok(open, `malformed tag ${tag}`);
    for (const a of open[2]!.matchAll(/="([^"]*)"/g)) assert.ok(!a[1]!.replace(entity, '').includes('&'), `bad attribute in ${tag}`);
    if (stack.length === 0) roots++;
    if (open[3] !== '/') stack.push(open[1]!);
  }
  assert.equal(xml.slice(last).trim(), '', 'text after the root element');
  assert.deepEqual(stack, [], 'unclosed elements');
  assert.equal(roots, 1, 'exactly one root element');
}

test('the well-formedness checker rejects broken XML', () => {
  assert.throws(() => assertWellFormedXml('<svg><g></svg>'));
  assert.throws(() => assertWellFormedXml('<svg>a < b</svg>'));
  assert.throws(() => assertWellFormedXml('<svg>a & b</svg>'));
  assert.throws(() => assertWellFormedXml('<svg x=1/>'));
  assertWellFormedXml('<?xml version="1.0"?>\n<svg a="1 &amp; 2"><g/>x &lt; y</svg>\n');
});

test('escapeXml escapes the five XML specials', () => {
  assert.equal(escapeXml(`<a href="x">&'`), '&lt;a href=&quot;x&quot;&gt;&amp;&apos;');
});

test('bar chart: well-formed SVG with every series, category, reference line and the title', () => {
  const svg = barChartSvg({
    title: 'max |Σ acc·S| <vs> bound & limit',
    subtitle: 'seen on 512 tokens',
    xLabel: 'layer',
    yLabel: 'log2',
    categories: ['0.q_proj', '0.k_proj', '0.v_proj'],
    series: [
      { label: 'seen', values: [17.5, 18.2, Number.NaN] },
      { label: 'bound', values: [22.3, 22.9, 21.5] },
    ],
    referenceLines: [{ label: 'int32 limit 2^31', value: 31 }],
  });
  assertWellFormedXml(svg);
  assert.match(svg, /^<\?xml/);
  assert.match(svg, /<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  for (const s of ['seen', 'bound', 'int32 limit 2^31', '0.q_proj', '0.v_proj', 'seen on 512 tokens', 'max |Σ acc·S| &lt;vs&gt; bound &amp; limit']) {
    assert.ok(svg.includes(s), `missing ${s}`);
  }
  // 5 finite bars (the NaN is skipped) + the background rect + 2 legend swatches
  assert.equal((svg.match(/<rect /g) ?? []).length, 1 + 5 + 2);
  assert.ok(svg.includes('stroke-dasharray="6 4"'), 'reference line drawn');
});

test('line chart on a log axis: well-formed, one polyline per series, non-positive values skipped', () => {
  const svg = lineChartSvg({
    title: 'weight MSE',
    xLabel: 'α',
    yLabel: 'MSE',
    x: [7, 8, 9, 10],
    xTickLabels: ['2^7', '2^8', '2^9', '2^10'],
    yScale: 'log10',
    series: [
      { label: 'float scale', values: [1e-5, 1e-5, 1e-5, 1e-5] },
      { label: 'integer scale', values: [3e-5, 1.5e-5, 1.1e-5, 0] },
    ],
  });
  assertWellFormedXml(svg);
  assert.equal((svg.match(/<polyline /g) ?? []).length, 2);
  assert.equal((svg.match(/<circle /g) ?? []).length, 4 + 3);
  for (const s of ['float scale', 'integer scale', '2^7', '2^10', '1e-5']) assert.ok(svg.includes(s), `missing ${s}`);
  assert.ok(!svg.includes('NaN') && !svg.includes('Infinity'), 'no non-finite coordinates');
});
