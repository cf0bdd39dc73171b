(function(){
var q=document.getElementById('q'),p=document.getElementById('p'),tip=document.getElementById('tip');
function filter(){
  var text=q.value.trim().toLowerCase(),only=p.checked;
  document.querySelectorAll('details.svc').forEach(function(d){
    var shown=0;
    d.querySelectorAll('.row[data-k]').forEach(function(r){
      var ok=(!text||r.getAttribute('data-k').indexOf(text)>=0)&&(!only||r.classList.contains('bad'));
      r.hidden=!ok;if(ok)shown++;});
    d.hidden=shown===0;if((text||only)&&shown)d.open=true;});
}
function days(d){
  if(d.getAttribute('data-done'))return;d.setAttribute('data-done','1');
  var parts=d.getAttribute('data-d').split(';'),code=parts[0],x={},h='',n,kv,t,c;
  for(n=1;n<parts.length;n++){kv=parts[n].split(':');x[kv[0]]=kv[1];}
  for(n=0;n<code.length;n++){
    c=code.charAt(n);t=APIMON_DAYS[n]||'';
    if(c==='.')t+=' \u00b7 -';
    else if(x[n]){kv=x[n].split('/');t+=' \u00b7 '+(kv[0]/kv[1]*100).toFixed(2)+'% ('+x[n]+')';}
    else t+=' \u00b7 100%';
    h+='<i class="d'+(c==='.'?'N':c)+'" title="'+t+'"></i>';}
  d.innerHTML=h;}
function esc(t){return t.replace(/&/g,'&amp;').replace(/"/g,'&quot;').replace(/</g,'&lt;');}
function bar(b){
  var data=b.getAttribute('data-b');
  if(!data||b.getAttribute('data-done'))return;b.setAttribute('data-done','1');
  var L=APIMON_LABELS,toks=data.split(' '),h='',n,f,c,p;
  for(n=0;n<toks.length;n++){
    f=toks[n].split(':');c=f[0];p=[APIMON_RUNS[n]||''];
    if(c==='-'){p.push(L.nodata);c='';}
    else if(c==='s')p.push(L.skipped);
    else{
      if(c==='o'||c==='r')p.push(f[1]||L.passed);
      else{p.push((L[c]||c)+(f[4]?' '+f[4]:''));if(f[1])p.push(f[1]);}
      if(f[2])p.push(f[2]+' ms');
      if(f[3])p.push(L.retried.replace('{n}',f[3]));}
    h+='<i'+(c?' class='+c:'')+' title="'+esc(p.join(' \u00b7 '))+'"></i>';}
  b.innerHTML=h;}
document.querySelectorAll('details.svc').forEach(function(s){
  function draw(){if(!s.open)return;s.querySelectorAll('.days').forEach(days);
    s.querySelectorAll('.bar').forEach(bar);}
  s.addEventListener('toggle',draw);draw();});
q.addEventListener('input',filter);p.addEventListener('change',filter);
document.addEventListener('click',function(e){
  var c=e.target;if(c.tagName!=='I'||!c.title)return;var r=c.closest('.row');
  tip.textContent=(r?r.querySelector('.nm').textContent+' \u00b7 ':'')+c.title;tip.hidden=false;});
tip.addEventListener('click',function(){tip.hidden=true;});
document.body.setAttribute('data-ready','1');
})();
